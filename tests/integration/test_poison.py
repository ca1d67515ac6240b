"""Poison mixed into valid traffic: a real worker dead-letters or bounds each one and goes on.

Each of these once crash-looped a worker or broke a schema (issue 12): timestamps in year
10000 or year 0 once the offset is applied, a value nested past the validator's recursion
limit, a 20,000-line cart, and a record of 600 KB. They go first, so every valid event
behind them depends on the worker surviving them.
"""

from __future__ import annotations

import orjson
from aiokafka import AIOKafkaProducer

from streamcrm.synthetic import generate

from .conftest import Deployment

CART_LINES = 20_000


def _view(event_id: str, ts: str, **extra: object) -> bytes:
    return orjson.dumps({
        "event_id": event_id, "type": "product_viewed", "customer_id": "poison", "ts": ts,
        "channel": "web", "sku": "s1", "category": "shoes", "price": 10.0, **extra,
    })  # fmt: skip


def _poison(dep: Deployment) -> list[tuple[str, bytes, bytes]]:
    browse, cart = dep.topic_of("browse"), dep.topic_of("cart")
    deep = _view("deep", "2026-11-01T08:00:00Z").replace(
        b'"sku":"s1"', b'"sku":' + b"[" * 300 + b"]" * 300
    )
    records = [
        (browse, b"poison", _view("y10000", "9999-12-31T23:00:00-01:00")),
        (browse, b"poison", _view("y0", "0001-01-01T00:00:00+01:00")),
        (browse, b"poison", _view("y9999", "9999-12-31T12:00:00Z")),
        (browse, b"poison", deep),
        (browse, b"poison", _view("big", "2026-11-01T08:00:00Z", padding="x" * 600_000)),
    ]
    for i in range(CART_LINES):
        add = {
            "event_id": f"line{i}", "type": "cart_item_added", "customer_id": "hoarder",
            "ts": "2026-11-01T08:00:00Z", "channel": "web", "cart_id": "k1",
            "sku": f"sku{i}", "qty": 1, "unit_price": 1.0,
        }  # fmt: skip
        records.append((cart, b"hoarder", orjson.dumps(add)))
    return records


async def test_poison_is_isolated_and_every_valid_event_is_applied(
    deployment: Deployment, producer: AIOKafkaProducer
) -> None:
    worker = deployment.start_worker()
    poison = _poison(deployment)
    valid = list(generate(2400, seed=5, customers=100))
    futures = [await producer.send(topic, value, key=key) for topic, key, value in poison]
    for r in valid:
        futures.append(await producer.send(deployment.topic_of(r.topic_kind), r.value, key=r.key))
    for future in futures:
        await future
    total = len(poison) + len(valid)
    stats = worker.wait_for(
        lambda s: s["events_in"] >= total, timeout=240, what=f"{total} events in"
    )
    assert stats["dead_letters_by_reason"] == {
        "ts_out_of_range": 3,
        "schema_violation": 1,
        "too_large": 1,
    }
    assert stats["applied"] == len(valid) + CART_LINES
    assert stats["applied"] + stats["dead_letters"] + stats["duplicates"] == total
    hoarder = worker.get("/customers/hoarder")
    assert len(hoarder["cart"]["lines"]) == 500
    assert hoarder["cart"]["lines"][0]["sku"] == f"sku{CART_LINES - 500}"
    assert worker.proc.poll() is None  # never restarted: one process all along
    log = worker.log_path.read_text(errors="replace")
    assert "the ingest loop failed" not in log and "processing_error" not in log
