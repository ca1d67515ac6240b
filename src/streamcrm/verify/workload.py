"""The workload ``streamcrm verify`` publishes: seeded synthetic traffic stamped in the past. Pure.

Workers run on the wall clock, as in production. The synthetic traffic spans days of
event time, so it is shifted to end ``settle_s`` before ``now``: every abandoned-cart
deadline of the workload is already due when its cart is read, and fires during the run
(the hardest case for read skew: nothing holds a deadline back but the worker's view of
the other topics).

>>> w = build_workload(50, seed=1, customers=5, now=2_000_000_000.0, settle_s=3600.0)
>>> len(w.events), max(e.ts for e in w.events) <= 2_000_000_000.0 - 3600.0
(50, True)
>>> w.events == build_workload(50, seed=1, customers=5, now=2_000_000_000.0, settle_s=3600.0).events
True
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from streamcrm.events import parse_ts
from streamcrm.synthetic import SyntheticRecord, generate


@dataclass(frozen=True, slots=True)
class PublishedEvent:
    """One valid input event, as published (the facts the figures are checked against)."""

    kind: str  # browse, cart, order
    key: bytes
    value: bytes
    event_id: str
    customer_id: str
    type: str
    ts: float
    cart_id: str | None  # order_placed: the cart it bought


@dataclass(frozen=True, slots=True)
class Workload:
    events: tuple[PublishedEvent, ...]

    def records(self) -> list[tuple[str, bytes, bytes]]:
        """``(topic kind, key, value)`` in publishing order, as :func:`streamcrm.publish.publish` takes."""
        return [(e.kind, e.key, e.value) for e in self.events]


def published_event(record: SyntheticRecord) -> PublishedEvent:
    body: dict[str, Any] = orjson.loads(record.value)
    return PublishedEvent(
        kind=record.topic_kind,
        key=record.key,
        value=record.value,
        event_id=body["event_id"],
        customer_id=body["customer_id"],
        type=body["type"],
        ts=parse_ts(body["ts"]),
        cart_id=body.get("cart_id") if body["type"] == "order_placed" else None,
    )


def build_workload(
    events: int, *, seed: int, customers: int, now: float, settle_s: float
) -> Workload:
    """``events`` valid synthetic events whose last event time is ``settle_s`` before ``now``."""
    origin = datetime(2026, 11, 1, tzinfo=UTC)
    probe = [
        published_event(r) for r in generate(events, seed=seed, customers=customers, start=origin)
    ]
    span = max((e.ts for e in probe), default=origin.timestamp()) - origin.timestamp()
    start = datetime.fromtimestamp(int(now - settle_s - span) - 1, UTC)
    shifted = generate(events, seed=seed, customers=customers, start=start)
    return Workload(tuple(published_event(r) for r in shifted))
