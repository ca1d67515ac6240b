"""A worker on a durable embedded broker (Tansu on S3 storage, a local moto_server) lives
through the broker being killed and restarted, and through a 30 s outage (SIGSTOP, then
SIGCONT): it reconnects, resumes from its committed offsets, and every valid event is
applied exactly once (counted from /stats and from the customers changelog's lineage).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streamcrm.synthetic import generate
from streamcrm.tansu import Tansu, durable_broker
from streamcrm.verify import figures
from streamcrm.verify.readback import read_topic
from streamcrm.verify.workload import PublishedEvent, Workload, published_event

from .conftest import Deployment

N_RECORDS = 1000


@pytest.fixture
def durable(tmp_path: Path) -> Iterator[Tansu]:
    with durable_broker(tmp_path) as tansu:
        yield tansu


async def _produce(address: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=address, acks=1)
    await producer.start()
    try:
        futures = [await producer.send(topic, v, key=v) for v in values]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def test_records_survive_a_broker_kill_on_s3_storage(durable: Tansu) -> None:
    values = [f"record-{i}".encode() for i in range(N_RECORDS)]
    await _produce(durable.address, "durable.records", values)
    took = durable.restart()  # SIGKILL, then start on the same port and storage
    back = await read_topic(durable.address, "durable.records")
    print(
        f"{N_RECORDS} written, broker killed and restarted in {took:.2f} s, {len(back)} read back"
    )
    assert sorted(r.value for r in back) == sorted(values)


def _workload(n: int, seed: int) -> list[PublishedEvent]:
    records = generate(n, seed=seed, customers=80)
    return [published_event(r) for r in records if r.malformed is None]


async def _publish(dep: Deployment, events: list[PublishedEvent]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=dep.bootstrap, acks=1, linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(dep.topic_of(e.kind), e.value, key=e.key) for e in events]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _applied_exactly_once(dep: Deployment, events: list[PublishedEvent]) -> dict[str, int]:
    changelog = await read_topic(dep.bootstrap, f"{dep.app_id}-customers-v1-changelog")
    lines = figures.lineages((r.key.decode(), r.value) for r in changelog if r.key is not None)
    return figures.application_figures(Workload(tuple(events)).events, lines)


async def _drill(dep: Deployment, durable: Tansu, fault: str) -> None:
    events = _workload(2400, seed=21)
    try:
        await _run_drill(dep, durable, fault, events[:1000], events[1000:2000], events[2000:])
    finally:
        for worker in dep.workers:
            worker.stop()


async def _run_drill(
    dep: Deployment,
    durable: Tansu,
    fault: str,
    first: list[PublishedEvent],
    second: list[PublishedEvent],
    third: list[PublishedEvent],
) -> None:
    worker = dep.start_worker("w1", redis=False)
    await _publish(dep, first)
    worker.wait_for(lambda s: s["applied"] >= len(first), timeout=120, what="first part applied")
    started = time.monotonic()
    if fault == "restart":
        durable.restart()
    else:
        durable.pause()
        time.sleep(30)
        assert worker.proc.poll() is None, (
            f"the worker exited during the outage: {worker.log_tail()}"
        )
        durable.resume()
    await _publish(dep, second)  # a new producer: the storefront reconnects too
    both = len(first) + len(second)
    stats = worker.wait_for(lambda s: s["applied"] >= both, timeout=240, what="second part applied")
    print(
        f"broker {fault}: the worker applied all {both} events "
        f"{time.monotonic() - started:.1f} s after the fault; /stats {stats['applied']} applied, "
        f"{stats['duplicates']} redeliveries dropped"
    )
    # One process throughout: it reconnected instead of crashing and being restarted.
    assert worker.proc.poll() is None
    assert (stats["applied"], stats["dead_letters"]) == (both, 0)

    # A new worker resumes from the offsets committed through the fault: it reads only
    # what comes after (nothing again, so no redelivery to drop).
    worker.stop()
    successor = dep.start_worker("w2", redis=False)
    await _publish(dep, third)
    after = successor.wait_for(
        lambda s: s["applied"] >= len(third), timeout=120, what="third part applied"
    )
    assert (after["events_in"], after["applied"], after["duplicates"]) == (len(third),) * 2 + (0,)

    events = first + second + third
    found = await _applied_exactly_once(dep, events)
    assert found["events_lost"] == 0, found
    assert found["events_applied_twice"] == 0, found
    assert found["lineage_gaps"] == 0, found
    coupons = [orjson.loads(r.value) for r in await read_topic(dep.bootstrap, dep.topics.coupons)]
    assert coupons  # the workload's carts are long abandoned on the wall clock
    assert figures.duplicate_coupons(coupons, coupons) == 0  # no coupon id with two bodies


async def test_worker_survives_a_broker_restart(
    durable: Tansu, redis_url: str, tmp_path: Path
) -> None:
    await _drill(Deployment(durable.address, redis_url, tmp_path), durable, "restart")


async def test_worker_survives_a_broker_outage(
    durable: Tansu, redis_url: str, tmp_path: Path
) -> None:
    await _drill(Deployment(durable.address, redis_url, tmp_path), durable, "outage")
