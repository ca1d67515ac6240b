"""Candidate statistics' deltas: what one worker's interactions added, per SKU. Pure.

Every part of :class:`~streamcrm.learning.candidates.CandidateStats` is a sum, so a delta
is additive: decayed popularity is a sum of weights each decayed from its own time (kept
as one score at the latest time, as the stats keep it), all-time counts and co-occurrence
weights are plain sums; the catalogue entry (category, price) is the latest seen. A delta
holds at most ``max_skus`` SKUs (the cap the stats themselves have): past it, the SKUs
with the least weight in this delta are dropped from it, and counted.

As data (learner delta version 2): ``{"events": n, "dropped": d, "items": [[sku, score,
at, count, category, price, [neighbour, weight, neighbour, weight, ...]], ...]}``. Each
co-occurrence link is sent once, forward (from the SKU interacted with to the earlier
one): the receiver adds the reverse link itself where it tracks the neighbour, as
:meth:`CandidateStats.observe` does locally (version 1 sent both directions: twice the
links to encode, decode and check). Neighbours are one flat list, not pairs (a third of
the JSON arrays to decode).

>>> d = SkuDeltas(3600.0, 10, 5)
>>> d.observe("a", "shoes", 50.0, 0.0, 1.0, [], 1800.0)
>>> d.observe("b", None, None, 60.0, 2.0, [("a", 0.0)], 1800.0)
>>> d.to_data()["items"]
[['a', 1.0, 0.0, 1.0, 'shoes', 50.0, []], ['b', 2.0, 60.0, 2.0, None, None, ['a', 2.0]]]
>>> check_delta(d.to_data())[1]
2

The outbox keeps one row per SKU, already in that shape (one lookup per SKU touched, and
an export that only lists the rows); the check of a received delta is one pass of inline
type tests (it runs once per SKU and neighbour on every receiving worker).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from itertools import chain
from typing import Any

from streamcrm.learning.river_state import BadState, integer, pairs

MAX_DELTA_SKUS = 1_000_000
MAX_NEIGHBOURS = 1_000  # per SKU in one delta
Item = list[Any]  # [sku, score, at, count, category, price, [neighbour, weight, ...]]
# One outbox row: [score, at, count, category, price, {neighbour: weight}]
Row = list[Any]


class SkuDeltas:
    __slots__ = ("events", "half_life_s", "max_neighbours", "max_skus", "rows")

    def __init__(self, half_life_s: float, max_skus: int, max_neighbours: int) -> None:
        self.half_life_s, self.max_skus, self.max_neighbours = half_life_s, max_skus, max_neighbours
        self.events = 0
        self.rows: dict[str, Row] = {}

    def observe(
        self, sku: str, category: str | None, price: float | None, ts: float, weight: float,
        recent: Iterable[tuple[str, float]], session_s: float,
    ) -> None:  # fmt: skip
        """The same interaction :meth:`CandidateStats.observe` just applied; its links
        forward only (the receiver makes the reverse ones)."""
        self.events += 1
        row = self.rows.get(sku)
        if row is None:
            row = self.rows[sku] = [weight, ts, weight, None, None, {}]
        else:
            row[0] = weight + row[0] * math.pow(0.5, max(ts - row[1], 0.0) / self.half_life_s)
            row[1] = max(ts, row[1])
            row[2] += weight
        if category:
            row[3] = category
        if price is not None:
            row[4] = price
        cap = 2 * self.max_neighbours
        for other, at in recent:
            if other != sku and ts - at <= session_s:
                mine = row[5]
                mine[other] = mine.get(other, 0.0) + weight
                if len(mine) > cap:
                    row[5] = self._strongest(mine)

    def _strongest(self, neighbours: dict[str, float]) -> dict[str, float]:
        return dict(sorted(neighbours.items(), key=lambda kv: -kv[1])[: self.max_neighbours])

    def to_data(self) -> dict[str, Any]:
        rows, dropped = self.rows, 0
        skus = sorted(rows)
        if len(skus) > self.max_skus:  # keep the SKUs this delta weighs most
            kept = sorted(skus, key=lambda s: -rows[s][2])[: self.max_skus]  # stable: ties by SKU
            dropped, skus = len(skus) - len(kept), sorted(kept)
        items = []
        flat = chain.from_iterable
        for sku in skus:
            score, at, count, category, price, links = rows[sku]
            items.append([sku, score, at, count, category, price, list(flat(links.items()))])
        return {"events": self.events, "dropped": dropped, "items": items}


def check_delta(data: Any) -> tuple[list[Item], int]:
    """The items and event count of a delta as :meth:`SkuDeltas.to_data` writes it (the
    items themselves, checked, not copied); :class:`BadState` on anything else (a record
    is data, never trusted).

    >>> check_delta({"events": 1, "items": [["a", 1.0, 0.0, 1.0, None, None, [["b", 1.0]]]]})
    Traceback (most recent call last):
    ...
    streamcrm.learning.river_state.BadState: neighbours: expected a flat [sku, weight, ...] list
    """
    if not isinstance(data, dict):
        raise BadState("candidate delta: expected an object")
    events = integer(data.get("events"), "candidate delta events")
    items = pairs(data.get("items"), "candidate delta items", MAX_DELTA_SKUS)
    finite = math.isfinite
    for row in items:
        if len(row) != 7:
            raise BadState("candidate delta: expected 7 fields per SKU")
        sku, score, at, count, category, price, links = row
        if not (type(sku) is str and len(sku) <= 1000
                and (type(score) is float or type(score) is int) and finite(score) and score > 0
                and (type(at) is float or type(at) is int) and finite(at)
                and (type(count) is float or type(count) is int) and finite(count)
                and (category is None or (type(category) is str and len(category) <= 1000))
                and (price is None or ((type(price) is float or type(price) is int) and finite(price)))
                and type(links) is list and len(links) <= 2 * MAX_NEIGHBOURS):  # fmt: skip
            raise BadState(f"candidate delta: a malformed record for SKU {str(sku)[:40]!r}")
        if len(links) & 1:
            raise BadState("neighbours: expected a flat [sku, weight, ...] list")
        it = iter(links)
        for other, weight in zip(it, it, strict=False):  # even: checked above
            if not (type(other) is str and len(other) <= 1000
                    and (type(weight) is float or type(weight) is int) and finite(weight)):  # fmt: skip
                raise BadState("neighbours: expected a flat [sku, weight, ...] list")
    return items, events
