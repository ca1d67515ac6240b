"""Two workers share what they learn through the real broker: an interaction learned on
one shows in the other's candidates, a redelivered delta is merged once, a corrupt record
is rejected and the worker goes on. The measured delay is printed, not asserted."""

from __future__ import annotations

import asyncio
import time
import uuid

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streamcrm.events import format_ts
from streamcrm.ingest import Processor, Record
from streamcrm.replay.runner import KINDS
from streamcrm.sharing.kafka import KafkaTransport, share_once
from streamcrm.sharing.learners import Peer, start
from streamcrm.state import CustomerState

TS = 1_764_000_000.0


async def create_topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        await admin.close()


def view(customer: str, sku: str, ts: float) -> Record:
    value = {"type": "product_viewed", "event_id": uuid.uuid4().hex, "customer_id": customer,
             "ts": format_ts(ts), "channel": "web", "sku": sku, "category": "shoes",
             "price": 30.0}  # fmt: skip
    return Record("browse", 0, 0, customer.encode(), orjson.dumps(value))


async def test_an_interaction_on_one_worker_shows_in_the_others_candidates(
    kafka_bootstrap: str,
) -> None:
    topic = f"learning-{uuid.uuid4().hex[:8]}"
    await create_topic(kafka_bootstrap, topic)
    workers = [Processor(KINDS, clock="event") for _ in range(2)]
    peers = [Peer("worker-a"), Peer("worker-b")]
    transports = [KafkaTransport(kafka_bootstrap, topic) for _ in range(2)]
    for w, t in zip(workers, transports, strict=True):
        start(w.learners)
        await t.start()
    try:
        table: dict[str, CustomerState] = {}
        batch = workers[0].process([view("c1", "sku-only-on-a", TS)], table.get, TS)
        assert batch.applied["product_viewed"] == 1
        assert "sku-only-on-a" not in workers[1].learners.candidates.popularity
        sent = time.perf_counter()
        await share_once(peers[0], workers[0].learners, transports[0])
        for _ in range(200):  # bounded: a lost delta fails the test instead of hanging it
            await share_once(peers[1], workers[1].learners, transports[1])
            if "sku-only-on-a" in workers[1].learners.candidates.popularity:
                break
        delay = time.perf_counter() - sent
        assert [s for s, _ in workers[1].learners.candidates.top(5, TS)] == ["sku-only-on-a"]
        print(f"worker a -> worker b through {topic}: {delay * 1000:.0f} ms, "
              f"{transports[0].bytes} bytes for one interaction")  # fmt: skip

        # A second reader from the start of the topic (a restarted worker's consumer) gets
        # the same delta again: merged once only. A corrupt record is rejected, not fatal.
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        await producer.send_and_wait(topic, b'{"v": 1, "worker": "x", "seq": "one"}', partition=0)
        await producer.stop()
        again = KafkaTransport(kafka_bootstrap, topic)
        await again.start(from_offset=0)
        merged = rejected = 0
        for _ in range(50):
            m, r = await share_once(peers[1], workers[1].learners, again, timeout_s=0.2)
            merged, rejected = merged + m, rejected + r
            if rejected:
                break
        await again.stop()
        assert (merged, rejected) == (0, 1)
        assert workers[1].learners.candidates.counts["sku-only-on-a"] == 1.0
    finally:
        for t in transports:
            await t.stop()
    await asyncio.sleep(0)
