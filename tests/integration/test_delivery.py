"""At-least-once delivery across crashes, kills, stops and rebalances, with a backlog.

A restart or a rebalance reads from the committed offsets while the group settles; a
record fetched in that window and then dropped must be read again, never covered by a
commit (issue 12, point 5). The checks: the committed offset of the partition holding a
crashing batch never passes it, and afterwards every customer's state equals the pure
core's over the same events (nothing lost, nothing applied twice).
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streamcrm import state_codec
from streamcrm.app.factory import CUSTOMERS_TABLE
from streamcrm.config import Settings
from streamcrm.kafka_admin import ensure_topics
from streamcrm.state import CustomerState
from streamcrm.synthetic import SyntheticRecord, generate

from .conftest import Deployment, WorkerHandle
from .delivery_diagnosis import Sent, explain
from .test_ingest import expected_states

CRASH_RESTARTS = 4


async def publish(
    producer: AIOKafkaProducer, dep: Deployment, records: list[SyntheticRecord]
) -> list[Any]:
    """Send and wait; the RecordMetadata (partition, offset) of each record, in order."""
    futures = [await producer.send(dep.topic_of(r.topic_kind), r.value, key=r.key) for r in records]
    return [await future for future in futures]


async def committed_offsets(dep: Deployment) -> dict[TopicPartition, int]:
    """The group's committed offset of every input partition (-1: none yet)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=dep.bootstrap, group_id=dep.app_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        offsets = {}
        for kind in ("browse", "cart", "order"):
            for partition in range(dep.partitions):
                tp = TopicPartition(dep.topic_of(kind), partition)
                offsets[tp] = await consumer.committed(tp) or -1
        return offsets
    finally:
        await consumer.stop()


def end_offsets(metadata: list[Any]) -> dict[TopicPartition, int]:
    """The end of every partition written, from what was produced (Tansu's ListOffsets
    answers the base offset of the last batch + 1, not the end: DESIGN.md)."""
    ends: dict[TopicPartition, int] = {}
    for m in metadata:
        tp = TopicPartition(m.topic, m.partition)
        ends[tp] = max(ends.get(tp, 0), m.offset + 1)
    return ends


async def wait_committed_to_end(
    dep: Deployment, metadata: list[Any], timeout: float = 60.0
) -> None:
    """Every input partition committed up to (at least) the end of what was published: all
    applied, all committed. (At least: a producer retry may have written a record twice.)"""
    deadline = time.monotonic() + timeout
    ends = end_offsets(metadata)
    committed: dict[TopicPartition, int] = {}
    while time.monotonic() < deadline:
        committed = await committed_offsets(dep)
        if all(committed[tp] >= end for tp, end in ends.items()):
            return
        await asyncio.sleep(1.0)
    behind = {str(tp): (committed.get(tp), end) for tp, end in ends.items() if committed[tp] < end}
    pytest.fail(f"committed offsets never reached the end offsets: {behind}")


async def assert_state_matches_core(
    worker: WorkerHandle, dep: Deployment, records: list[SyntheticRecord], metadata: list[Any]
) -> None:
    """events_applied counts every event ever applied to a customer: equal to the core's
    only if nothing was lost or applied twice (redeliveries are dropped by event_id).
    ``metadata``: where each record went, for the diagnosis of a customer short of events."""
    expected = expected_states(dep, records)
    want = {cid: state.events_applied for cid, state in expected.items()}

    def applied_counts() -> dict[str, int]:
        return {
            cid: (worker.get(f"/customers/{cid}") or {}).get("events_applied", 0) for cid in want
        }

    deadline = time.monotonic() + 120
    while (got := applied_counts()) != want and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    diff = {cid: (got[cid], n) for cid, n in want.items() if got[cid] != n}
    if diff:
        why = await diagnose(dep, records, metadata, sorted(diff))
        pytest.fail(f"(applied, expected) per customer: {diff}; stats {worker.stats()}\n{why}")
    for customer_id, state in expected.items():
        got_state = worker.get(f"/customers/{customer_id}")
        assert got_state["order_count"] == state.order_count, customer_id
        assert got_state["total_spend"] == pytest.approx(state.total_spend), customer_id


async def read_changelog(dep: Deployment) -> dict[str, list[tuple[int, CustomerState]]]:
    """Every record of the customers table's changelog, per customer in offset order, up
    to the end the fetch responses report (Tansu's ListOffsets is short: app/catchup.py)."""
    topic = f"{dep.app_id}-{CUSTOMERS_TABLE}-changelog"
    consumer = AIOKafkaConsumer(bootstrap_servers=dep.bootstrap, enable_auto_commit=False)
    await consumer.start()
    history: dict[str, list[tuple[int, CustomerState]]] = {}
    try:
        tps = [TopicPartition(topic, p) for p in range(dep.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + 60
        pending = set(tps)
        while pending and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                for m in messages:
                    if m.key is not None and m.value is not None:
                        state = state_codec.decode(m.value)
                        history.setdefault(m.key.decode(), []).append((m.offset, state))
            for tp in list(pending):
                highwater = consumer.highwater(tp)
                if highwater is not None and await consumer.position(tp) >= highwater:
                    pending.discard(tp)
    finally:
        await consumer.stop()
    return history


async def diagnose(
    dep: Deployment, records: list[SyntheticRecord], metadata: list[Any], customers: list[str]
) -> str:
    """Why each customer is short (or over), from the changelog: tests/integration/
    delivery_diagnosis.py."""
    history = await read_changelog(dep)
    committed = {(tp.topic, tp.partition): o for tp, o in (await committed_offsets(dep)).items()}
    sent = [
        Sent(orjson.loads(r.value)["event_id"], r.key.decode(), m.topic, m.partition, m.offset)
        for r, m in zip(records, metadata, strict=True)
        if r.key is not None
    ]
    out = []
    for cid in customers:
        findings = explain(cid, history.get(cid, []), sent, committed)
        out.append(f"{cid}: " + ("; ".join(findings[:20]) or "no finding"))
        steps = [
            f"@{o} n={st.events_applied} at={st.updated_at:.3f} {list(st.offsets)}"
            for o, st in history.get(cid, [])
        ]
        out.append(f"{cid} changelog: " + " | ".join(steps[-30:]))
    return "\n".join(out)


async def trickle(
    producer: AIOKafkaProducer,
    dep: Deployment,
    records: list[SyntheticRecord],
    sent: list[Any],
    stop: asyncio.Event,
) -> None:
    """Live traffic, one record every 20 ms, until ``stop``; ``sent`` gets the metadata."""
    for record in records:
        if stop.is_set():
            return
        topic = dep.topic_of(record.topic_kind)
        sent.append(await producer.send_and_wait(topic, record.value, key=record.key))
        await asyncio.sleep(0.02)


async def test_a_crashing_batch_is_never_committed_past_and_is_applied_once_fixed(
    deployment: Deployment, producer: AIOKafkaProducer
) -> None:
    deployment.partitions = 8  # the default: more partitions to seek, a longer window
    await ensure_topics(
        Settings(broker=deployment.bootstrap, partitions=8, topics=deployment.topics)
    )
    records = [r for r in generate(8000, seed=21, customers=80) if r.malformed is None]
    backlog, live = records[:2400], records[2400:]
    metadata = await publish(producer, deployment, backlog)
    middle = len(backlog) // 2
    marker = orjson.loads(backlog[middle].value)["event_id"]
    crash_tp = TopicPartition(metadata[middle].topic, metadata[middle].partition)
    crash_offset = metadata[middle].offset
    drill = {"STREAMCRM_DRILL_CRASH_MARKER": marker}

    # The same batch crashes the ingest loop on every start: each restart reads from the
    # committed offsets while recovery seeks, with live traffic arriving, the window in
    # which fetched records used to be dropped and then committed past.
    sent: list[Any] = []
    stop = asyncio.Event()
    traffic = asyncio.ensure_future(trickle(producer, deployment, live, sent, stop))
    try:
        for attempt in range(CRASH_RESTARTS):
            worker = deployment.start_worker(f"crash{attempt}", redis=False, wait=False, env=drill)
            try:
                await asyncio.to_thread(worker.proc.wait, 90)
            except subprocess.TimeoutExpired:
                committed = (await committed_offsets(deployment))[crash_tp]
                pytest.fail(
                    f"start {attempt}: the crashing batch was skipped (committed offset "
                    f"{committed} of {crash_tp}, the crashing record at {crash_offset})"
                )
            assert "drill: STREAMCRM_DRILL_CRASH_MARKER seen" in worker.log_path.read_text(), (
                worker.log_tail()
            )
            committed = (await committed_offsets(deployment))[crash_tp]
            print(
                f"start {attempt}: committed {committed} of {crash_tp}, crashing at {crash_offset}"
            )
            assert committed <= crash_offset, (
                f"start {attempt}: committed offset {committed} of {crash_tp} passed the "
                f"record at {crash_offset} whose batch never committed"
            )
    finally:
        stop.set()
        await traffic
    metadata += sent
    published = backlog + live[: len(sent)]

    fixed = deployment.start_worker("fixed", redis=False)
    await assert_state_matches_core(fixed, deployment, published, metadata)
    await wait_committed_to_end(deployment, metadata)
    assert fixed.stats()["dead_letters"] == 0


async def test_kill_term_join_and_leave_under_backlog_lose_and_repeat_nothing(
    deployment: Deployment, producer: AIOKafkaProducer
) -> None:
    records = [r for r in generate(3200, seed=23, customers=90) if r.malformed is None]
    quarter = len(records) // 4
    parts = [records[i * quarter : (i + 1) * quarter] for i in range(3)] + [records[3 * quarter :]]

    w1 = deployment.start_worker("w1", redis=False)
    metadata = await publish(producer, deployment, parts[0])
    w1.wait_for(lambda s: s["applied"] > 0, what="w1 applying")
    w1.kill()  # SIGKILL mid-stream
    metadata += await publish(producer, deployment, parts[1])  # a backlog for the next start

    w2 = deployment.start_worker("w2", redis=False)
    w2.wait_for(lambda s: s["applied"] > 0, what="w2 applying the backlog")
    w3 = deployment.start_worker("w3", redis=False)  # joins: partitions move with a backlog
    metadata += await publish(producer, deployment, parts[2])
    half = lambda s: len(s["partitions"]) == deployment.partitions // 2  # noqa: E731
    w3.wait_for(half, timeout=90, what="w3 owns half the partitions")
    w2.stop()  # SIGTERM: leaves the group; its partitions move back to w3
    metadata += await publish(producer, deployment, parts[3])

    w3.wait_for(
        lambda s: s["partitions"] == list(range(deployment.partitions)),
        timeout=90,
        what="w3 owns every partition",
    )
    await assert_state_matches_core(w3, deployment, records, metadata)
    await wait_committed_to_end(deployment, metadata)
