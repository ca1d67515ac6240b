"""``streamcrm replay --via-kafka``: the same events through a broker and a real worker.

The worker runs on the event clock with cross-topic reordering, and the log ends with
end-of-stream markers, so its decisions must equal the in-memory replay's (a test holds
them to that).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from streamcrm.config import Settings, Topics, bootstrap_servers
from streamcrm.kafka_security import client_kwargs, start_client
from streamcrm.publish import publish
from streamcrm.replay.adapters import Mapped
from streamcrm.replay.runner import replay_order
from streamcrm.tansu import broker, free_port
from streamcrm.worker_process import WorkerProcess


def replay_via_kafka(
    mapped: Sequence[Mapped], settings: Settings, args: argparse.Namespace
) -> dict[str, Any]:
    summary, _ = run_via_kafka(mapped, settings, explicit_broker=args.broker is not None)
    return summary


def run_via_kafka(
    mapped: Sequence[Mapped], settings: Settings, *, explicit_broker: bool, timeout_s: float = 600.0
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Replay through Kafka; return the worker's summary and the coupons it published."""
    run_id = uuid.uuid4().hex[:8]
    topics = Topics().prefixed(f"replay-{run_id}.")
    settings = replace(
        settings, app_id=f"streamcrm-replay-{run_id}", topics=topics, web_port=free_port(),
        clock="event", redis_url=None,
    )  # fmt: skip
    ordered = replay_order(mapped)
    with tempfile.TemporaryDirectory(prefix="streamcrm-replay-") as tmp:
        workdir = Path(tmp)
        with broker(
            settings.broker if explicit_broker else None, workdir / "broker.log"
        ) as address:
            settings = replace(settings, broker=address)
            worker = WorkerProcess(settings, workdir)
            try:
                worker.wait_ready()
                _say(f"replaying {len(ordered)} events through Kafka at {address}")
                asyncio.run(
                    publish(
                        settings,
                        ((m.topic_kind, m.key, m.value) for m in ordered),
                        end_of_stream=True,
                    )
                )
                stats = worker.wait_until(
                    lambda s: s.get("events_in", 0) >= len(ordered) and s.get("buffered", 1) == 0,
                    timeout_s=timeout_s, what="the worker to take every event",
                    progress=lambda s: _say(f"  {s.get('events_in', 0)}/{len(ordered)} events in"),
                )  # fmt: skip
                stats = worker.stats(fresh=True) or stats
                coupons = asyncio.run(
                    _read_all(settings, topics.coupons, stats["coupons_issued"])
                )
            finally:
                worker.stop()
    carts = stats.get("abandoned_cart", {})
    summary = {
        "events": stats["events_in"],
        "applied": stats["applied"],
        "dead_letters": stats["dead_letters"],
        "duplicates": stats["duplicates"],
        "customers": stats["customers"],
        **{k: v for k, v in carts.items() if k != "suppressed_by_reason"},
        "coupons_issued": stats["coupons_issued"],
        "timers_pending": stats["timers_pending"],
        "offers_emitted": stats["offers_emitted"],
        "price_suggestions": (stats.get("pricing") or {}).get("price_suggestions", 0),
        **{
            k: stats.get(k)
            for k in (
                "offers_evaluated",
                "offer_hit_rate_at_5",
                "offer_hit_rate_at_10",
                "popularity_hit_rate_at_5",
                "popularity_hit_rate_at_10",
            )
        },
    }
    return summary, coupons


async def _read_all(
    settings: Settings, topic: str, expected: int, timeout_s: float = 30.0
) -> list[dict[str, Any]]:
    servers = bootstrap_servers(settings.broker)
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=servers, auto_offset_reset="earliest",
        enable_auto_commit=False, group_id=None, **client_kwargs(settings.kafka_security),
    )  # fmt: skip
    await start_client(consumer, servers, settings.kafka_security)
    out: list[dict[str, Any]] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(out) < expected and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            out.extend(orjson.loads(m.value) for msgs in batch.values() for m in msgs)
    finally:
        await consumer.stop()
    return out


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
