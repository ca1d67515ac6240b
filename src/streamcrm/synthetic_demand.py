"""Demand shifts for the synthetic shop: bursts of extra views on a few SKUs. Pure.

The synthetic shop's demand is steady, so price suggestions have nothing to find. This
wraps its record stream and, ``after_s`` of event time past the first record, plans
for each of ``shifts`` SKUs (the most viewed so far, so each has a baseline) extra
``product_viewed`` events at ``per_hour`` (Poisson) for ``burst_s``, from customers
already seen, merged into the stream in event-time order. Additive: the shop's own
records pass through unchanged and in their order; with ``shifts=0`` the stream is
the same records. The extra events draw from their own random stream (``seed``).

>>> from streamcrm.synthetic import generate
>>> base = list(generate(3000, seed=7, customers=200))
>>> shifted = list(with_demand_shifts(iter(base), shifts=2, seed=7, after_s=6 * 3600.0))
>>> own = set(base)
>>> len(shifted) - len(base) > 50, [r for r in shifted if r in own] == base
(True, True)
"""

from __future__ import annotations

import heapq
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson

from streamcrm.events import format_ts, parse_ts
from streamcrm.synthetic import SyntheticRecord


def with_demand_shifts(
    records: Iterator[SyntheticRecord], *, shifts: int, seed: int,
    after_s: float = 12 * 3600.0, burst_s: float = 3600.0, per_hour: float = 40.0,
) -> Iterator[SyntheticRecord]:  # fmt: skip
    """``records`` with the bursts merged in (see the module's doc)."""
    if shifts <= 0:
        yield from records
        return
    rng = random.Random(f"demand-shifts-{seed}")
    views: Counter[str] = Counter()
    meta: dict[str, tuple[str, float]] = {}
    customers: dict[str, None] = {}
    first: float | None = None
    extra: list[tuple[float, int, SyntheticRecord]] = []  # (ts, seq, record): a heap
    planned = False
    for record in records:
        body = _body(record)
        ts = _ts(body)
        if ts is not None:
            while extra and extra[0][0] <= ts:
                yield heapq.heappop(extra)[2]
            first = ts if first is None else first
            if not planned and ts >= first + after_s:
                planned = True
                for n, r in enumerate(_burst(rng, views, meta, list(customers), ts, shifts, burst_s, per_hour)):
                    heapq.heappush(extra, (parse_ts(orjson.loads(r.value)["ts"]), n, r))
            _learn(body, views, meta, customers)
        yield record
    while extra:
        yield heapq.heappop(extra)[2]


def _body(record: SyntheticRecord) -> dict[str, Any] | None:
    if record.malformed is not None:
        return None
    body = orjson.loads(record.value)
    return body if isinstance(body, dict) else None


def _ts(body: dict[str, Any] | None) -> float | None:
    return parse_ts(body["ts"]) if body is not None else None


def _learn(
    body: dict[str, Any] | None, views: Counter[str], meta: dict[str, tuple[str, float]],
    customers: dict[str, None],
) -> None:  # fmt: skip
    if body is None:
        return
    customers[body["customer_id"]] = None
    if body["type"] == "product_viewed":
        views[body["sku"]] += 1
        meta[body["sku"]] = (body["category"], body["price"])


def _burst(
    rng: random.Random, views: Counter[str], meta: dict[str, tuple[str, float]],
    customers: list[str], start: float, shifts: int, burst_s: float, per_hour: float,
) -> Iterator[SyntheticRecord]:  # fmt: skip
    if not customers:
        return
    for sku, _ in views.most_common(shifts):
        category, price = meta[sku]
        t = start
        while (t := t + rng.expovariate(per_hour / 3600.0)) < start + burst_s:
            customer = rng.choice(customers)
            event = {
                "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "type": "product_viewed", "customer_id": customer, "ts": format_ts(t),
                "channel": "web", "sku": sku, "category": category, "price": price,
            }  # fmt: skip
            yield SyntheticRecord("browse", customer.encode(), orjson.dumps(event), None)
