"""Flash-sale fan-out through a real worker: announcement to the last notice, N customers.

An embedded Tansu broker and one ``streamcrm worker`` (wall clock, no Redis, holdout 0);
``--interested`` customers each view one of the sale's 20 SKUs (one event each, an hour
ago), the worker applies them, then one announcement whose sale starts at once: every
interested customer's "starts now" notice is due at the same instant (the worst burst).
Printed: how long the worker took from the announcement being sent to the last
notification's produce time (the Kafka record timestamps of ``streamcrm.campaigns.out``),
the notices read back, and the load. While the burst is decided a probe view (a customer
of its own, no sale SKU) is sent every 0.25 s; its input latency is the time from sending
it to its state's changelog write (that record's timestamp): whether input keeps flowing.

.venv/bin/python scripts/flash_sale_worker_fanout.py --interested 100000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streamcrm.config import Settings, bootstrap_servers
from streamcrm.crm_config import CrmConfig
from streamcrm.events import format_ts
from streamcrm.policies.contact import ContactConfig
from streamcrm.publish import publish
from streamcrm.tansu import embedded_broker, free_port
from streamcrm.worker_process import WorkerProcess

H = 3600.0


def views(n: int, at: float) -> list[tuple[str, bytes, bytes]]:
    out = []
    for i in range(n):
        customer = f"c{i:07d}"
        body = {"event_id": f"v{i}", "type": "product_viewed", "customer_id": customer,
                "ts": format_ts(at), "channel": "web", "sku": f"sale{i % 20}",
                "category": "tv", "price": 100.0}  # fmt: skip
        out.append(("browse", customer.encode(), orjson.dumps(body)))
    return out


async def announce(settings: Settings, now: float) -> float:
    body = {"event_id": uuid.uuid4().hex, "type": "flash_sale_announced", "ts": format_ts(now),
            "campaign_id": "fs-bench", "skus": [f"sale{i}" for i in range(20)],
            "starts_at": format_ts(now), "ends_at": format_ts(now + 4 * H),
            "discount_percent": 30}  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(settings.broker))
    await producer.start()
    try:
        sent_at = time.time()
        await producer.send_and_wait(settings.topics.campaigns, orjson.dumps(body), key=b"fs-bench")
    finally:
        await producer.stop()
    return sent_at


def probe(n: int) -> tuple[str, bytes, bytes]:
    customer = f"p{n:07d}"
    body = {"event_id": f"probe{n}", "type": "product_viewed", "customer_id": customer,
            "ts": format_ts(time.time()), "channel": "web", "sku": "other", "category": "misc",
            "price": 10.0}  # fmt: skip
    return ("browse", customer.encode(), orjson.dumps(body))


async def probes(settings: Settings, until: asyncio.Event) -> dict[bytes, float]:
    """One probe view every 0.25 s until ``until`` is set: key -> send time."""
    sent: dict[bytes, float] = {}
    while not until.is_set():
        record = probe(len(sent))
        sent[record[1]] = time.time()
        await publish(settings, [record])
        await asyncio.sleep(0.25)
    return sent


async def written_at(settings: Settings, keys: set[bytes], timeout_s: float) -> dict[bytes, float]:
    """The first changelog write time (s) of each of ``keys``' customer states."""
    topic = f"{settings.app_id}-customers-v1-changelog"
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap_servers(settings.broker), group_id=None,
        auto_offset_reset="earliest", enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    found: dict[bytes, float] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while len(found) < len(keys) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for msgs in batch.values():
                for m in msgs:
                    if m.key in keys and m.key not in found:
                        found[m.key] = m.timestamp / 1000
    finally:
        await consumer.stop()
    return found


async def burst(
    settings: Settings, expected: int, timeout_s: float
) -> tuple[float, list[float], list[float]]:
    """Announce, read the notices back while probing input; the probes' latencies (s)."""
    stop = asyncio.Event()
    probing = asyncio.create_task(probes(settings, stop))
    sent_at = await announce(settings, time.time())
    try:
        stamps = await read_notices(settings, expected, timeout_s)
    finally:
        stop.set()
        sent = await probing
    written = await written_at(settings, set(sent), 120.0)
    lags = sorted(written.get(k, float("inf")) - t for k, t in sent.items())
    return sent_at, stamps, lags


async def read_notices(settings: Settings, expected: int, timeout_s: float) -> list[float]:
    """Produce times (s) of the notices, once ``expected`` arrived (or at the timeout)."""
    consumer = AIOKafkaConsumer(
        settings.topics.campaigns_out, bootstrap_servers=bootstrap_servers(settings.broker),
        group_id=None, auto_offset_reset="earliest", enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    stamps: list[float] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(stamps) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            stamps += [m.timestamp / 1000 for msgs in batch.values() for m in msgs]
    finally:
        await consumer.stop()
    return stamps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interested", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="flash-fanout-"))
    crm = CrmConfig(contact=ContactConfig(holdout_share=0.0))
    with embedded_broker(workdir / "broker.log") as address:
        settings = Settings(
            broker=address, redis_url=None, app_id=f"flash-{uuid.uuid4().hex[:6]}",
            web_port=free_port(), partitions=args.partitions, fast_rebalance=True, crm=crm,
            data_dir=str(workdir / "data"),
        )  # fmt: skip
        settings = replace(settings, clock="wall")
        worker = WorkerProcess(settings, workdir)
        try:
            worker.wait_ready()
            worker.wait_until(lambda s: s.get("ready", True), timeout_s=120, what="ready")
            t = time.monotonic()
            sent = asyncio.run(publish(settings, views(args.interested, time.time() - H)))
            worker.wait_until(lambda s: s.get("applied", 0) >= sent, timeout_s=args.timeout,
                              what=f"{sent} views applied")  # fmt: skip
            load_s = time.monotonic() - t
            load_before = os.getloadavg()
            sent_at, stamps, lags = asyncio.run(burst(settings, args.interested, args.timeout))
            stats = worker.wait_until(
                lambda s: s["flash_sales"]["notifications"] >= len(stamps), timeout_s=60, what="counted"
            )  # fmt: skip
        finally:
            worker.stop()
    print(orjson.dumps({
        "interested": args.interested, "partitions": args.partitions, "views_applied_s": round(load_s, 1),
        "notices_read": len(stamps), "enrolled": stats["flash_sales"]["enrolled"],
        "announcement_to_last_notice_s": round(max(stamps) - sent_at, 3) if stamps else None,
        "announcement_to_first_notice_s": round(min(stamps) - sent_at, 3) if stamps else None,
        "notices_per_s": round(len(stamps) / max(max(stamps) - sent_at, 1e-9)) if stamps else None,
        "probes": len(lags), "probe_latency_median_s": round(lags[len(lags) // 2], 3) if lags else None,
        "probe_latency_max_s": round(lags[-1], 3) if lags else None,
        "worker_log": str(workdir / "worker.log"),
        "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()],
    }).decode())  # fmt: skip


if __name__ == "__main__":
    main()
