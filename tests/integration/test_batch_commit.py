"""The shell's batch commit on its own: one decided batch to a real broker and a real Redis."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

import orjson
import redis
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streamcrm import state_codec
from streamcrm.app.commit import BatchCommit
from streamcrm.app.factory import Runtime
from streamcrm.app.outbox import Outbox
from streamcrm.app.stats import WorkerStats
from streamcrm.audit import is_stage
from streamcrm.config import Settings, Topics
from streamcrm.erasure import ERASURE_REQUESTED
from streamcrm.events import format_ts
from streamcrm.ingest import BatchResult, Processor, Record
from streamcrm.kafka_admin import ensure_topics
from streamcrm.policies.contact import ContactConfig
from streamcrm.protocol import TOPIC_OF
from streamcrm.serving import SnapshotWriter
from streamcrm.snapshot import snapshot_key
from streamcrm.state import CustomerState
from streamcrm.verify.readback import read_topic

T0 = 1_796_000_000.0
DAY = 86_400.0


def _event(kind: str, customer: str, n: int, ts: float, **body: Any) -> dict[str, Any]:
    return {"event_id": f"e{n}", "type": kind, "customer_id": customer, "ts": format_ts(ts),
            "channel": "web", **body}  # fmt: skip


def _add(customer: str, n: int, ts: float) -> dict[str, Any]:
    return _event("cart_item_added", customer, n, ts, cart_id=f"k-{customer}", sku=f"s{n}",
                  qty=1, unit_price=30.0)  # fmt: skip


class Deployed:
    """A commit wired to its own topics on the real broker, Redis and an in-memory store."""

    def __init__(self, bootstrap: str, producer: AIOKafkaProducer, redis_url: str) -> None:
        run = uuid.uuid4().hex[:8]
        self.settings = Settings(
            broker=bootstrap, partitions=2, topics=Topics().prefixed(f"commit-{run}."),
            clock="wall", redis_key_prefix=f"commit-{run}:",
        )  # fmt: skip
        self.changelog = f"commit-{run}-customers-changelog"
        self.markers = SimpleNamespace(
            data={}, changelog_topic=SimpleNamespace(get_topic_name=lambda: f"{self.changelog}-m")
        )
        self.writer = SnapshotWriter(redis_url)
        self.runtime = Runtime(self.settings, WorkerStats(), self.writer, Outbox(lambda: producer))
        self.store: dict[str, CustomerState] = {}
        self.commit = BatchCommit(
            self.runtime, store=self.store, changelog=self.changelog, markers=self.markers
        )
        kinds = self.settings.topics.inputs()
        self.processor = Processor(kinds, contact=ContactConfig(holdout_share=0.0), clock="wall")
        self.topic_of_kind = {kind: topic for topic, kind in kinds.items()}
        self.offset = 0

    async def create_topics(self) -> None:
        await ensure_topics(self.settings)
        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.broker)
        await admin.start()
        try:
            names = (self.changelog, f"{self.changelog}-m")
            await admin.create_topics([NewTopic(n, 2, 1) for n in names])
        finally:
            await admin.close()

    def decide(self, bodies: list[dict[str, Any] | bytes], kind: str, now: float) -> BatchResult:
        records = []
        for body in bodies:
            value = body if isinstance(body, bytes) else orjson.dumps(body)
            key = b"c1" if isinstance(body, bytes) else body["customer_id"].encode()
            records.append(Record(self.topic_of_kind[kind], 0, self.offset, key, value))
            self.offset += 1
        return self.processor.process(records, self.store.get, now)

    async def read(self, topic: str) -> list[Any]:
        return await read_topic(self.settings.broker, topic, timeout_s=30.0)


async def test_a_batch_reaches_table_changelog_topics_stats_and_redis(
    kafka_bootstrap: str, producer: AIOKafkaProducer, redis_url: str
) -> None:
    d = Deployed(kafka_bootstrap, producer, redis_url)
    await d.create_topics()
    adds = [_add("c1", 1, T0), _add("c2", 2, T0 + 1)]
    result = d.decide([*adds, b"{not json"], "cart", now=T0 + 2 * DAY)  # stages fire at once
    assert result.coupons and result.offers and result.dead_letters  # every part exercised
    await d.commit(result, T0 + 2 * DAY)
    await producer.flush()

    assert d.store == {cid: state for cid, (_, state) in result.states.items()}
    changelog = await d.read(d.changelog)
    assert sorted((r.key, r.value) for r in changelog) == sorted(
        (cid.encode(), state_codec.encode(state)) for cid, (_, state) in result.states.items()
    )
    assert all(r.partition == result.states[r.key.decode()][0] for r in changelog)
    for attribute in set(TOPIC_OF.values()):  # a topic may carry several types (offers)
        records = await d.read(getattr(d.settings.topics, attribute))
        sent = sorted((r.key, orjson.loads(r.value)["event_id"]) for r in records)
        types = [t for t, a in TOPIC_OF.items() if a == attribute]
        assert sent == sorted((k, body["event_id"]) for t in types for k, body in result.emitted[t])

    stats = d.runtime.stats.as_dict()
    assert stats["coupons_issued"] == len(result.coupons)
    assert stats["offers_emitted"] == len(result.offers)
    # Deadlines fired: the stage decisions (offers are audited too, but fire no timer).
    stages = [decision for decision in result.decisions if is_stage(decision)]
    assert stages and stats["dead_letters"] == 1 and stats["timer_fires"] == len(stages)
    assert await d.writer.drain(10.0) == 0
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        for cid in ("c1", "c2"):
            assert client.hgetall(snapshot_key(cid, d.settings.redis_key_prefix))
    finally:
        client.close()


async def test_an_erasure_is_written_before_a_later_state_of_the_same_id(
    kafka_bootstrap: str, producer: AIOKafkaProducer, redis_url: str
) -> None:
    d = Deployed(kafka_bootstrap, producer, redis_url)
    await d.create_topics()
    await d.commit(d.decide([_add("c1", 1, T0)], "cart", now=T0 + 1), T0 + 1)
    request = _event(ERASURE_REQUESTED, "c1", 2, T0 + 10)
    again = _event("consent_updated", "c1", 3, T0 + 20, marketing=True)
    result = d.decide([request, again], "order", now=T0 + 21)
    assert "c1" in result.erasures and "c1" in result.states  # the new customer of that id
    await d.commit(result, T0 + 21)
    await producer.flush()

    values = [r.value for r in await d.read(d.changelog) if r.key == b"c1"]
    assert values[1:] == [None, state_codec.encode(result.states["c1"][1])]  # tombstone, then new
    assert d.store["c1"] == result.states["c1"][1]
    assert "c1" in d.markers.data
    receipts = await d.read(d.settings.topics.erasures)
    assert [r.key for r in receipts] == [b"c1"]
