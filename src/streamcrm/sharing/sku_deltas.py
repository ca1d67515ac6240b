"""Candidate statistics' deltas: what one worker's interactions added, per SKU. Pure.

Every part of :class:`~streamcrm.learning.candidates.CandidateStats` is a sum, so a delta
is additive: decayed popularity is a sum of weights each decayed from its own time (kept
as one score at the latest time, as the stats keep it), all-time counts and co-occurrence
weights are plain sums; the catalogue entry (category, price) is the latest seen. A delta
holds at most ``max_skus`` SKUs (the cap the stats themselves have): past it, the SKUs
with the least weight in this delta are dropped from it, and counted.

As data: ``{"events": n, "dropped": d, "items": [[sku, score|null, at, count, category,
price, [[neighbour, weight], ...]], ...]}``; ``score`` is null for an SKU that only
gained neighbours (it was not itself interacted with in this delta).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from streamcrm.learning.river_state import BadState, integer, pairs

MAX_DELTA_SKUS = 1_000_000
Item = tuple[str, float | None, float, float, str | None, float | None, list[tuple[str, float]]]


class SkuDeltas:
    __slots__ = ("events", "half_life_s", "links", "max_neighbours", "max_skus", "meta", "pop")

    def __init__(self, half_life_s: float, max_skus: int, max_neighbours: int) -> None:
        self.half_life_s, self.max_skus, self.max_neighbours = half_life_s, max_skus, max_neighbours
        self.events = 0
        self.pop: dict[str, list[float]] = {}  # sku -> [score, at, count]
        self.meta: dict[str, tuple[str | None, float | None]] = {}
        self.links: dict[str, dict[str, float]] = {}

    def observe(
        self, sku: str, category: str | None, price: float | None, ts: float, weight: float,
        recent: Iterable[tuple[str, float]], tracked: dict[str, Any], session_s: float,
    ) -> None:  # fmt: skip
        """The same interaction :meth:`CandidateStats.observe` just applied (``tracked``
        as it was then: links onto an evicted SKU were not made, so are not sent)."""
        self.events += 1
        entry = self.pop.get(sku)
        if entry is None:
            self.pop[sku] = [weight, ts, weight]
        else:
            entry[0] = weight + entry[0] * math.pow(0.5, max(ts - entry[1], 0.0) / self.half_life_s)
            entry[1] = max(ts, entry[1])
            entry[2] += weight
        if category is not None or price is not None:
            old = self.meta.get(sku, (None, None))
            self.meta[sku] = (category or old[0], price if price is not None else old[1])
        for other, at in recent:
            if other != sku and ts - at <= session_s:
                self._link(sku, other, weight)
                if other in tracked:
                    self._link(other, sku, weight)

    def _link(self, a: str, b: str, weight: float) -> None:
        neighbours = self.links.setdefault(a, {})
        neighbours[b] = neighbours.get(b, 0.0) + weight
        if len(neighbours) > 2 * self.max_neighbours:
            keep = sorted(neighbours.items(), key=lambda kv: -kv[1])[: self.max_neighbours]
            self.links[a] = dict(keep)

    def to_data(self) -> dict[str, Any]:
        skus = set(self.pop) | set(self.links)
        dropped = 0
        if len(skus) > self.max_skus:  # keep the SKUs this delta weighs most
            weight = {s: self.pop[s][2] if s in self.pop else 0.0 for s in skus}
            kept = sorted(skus, key=lambda s: (-weight[s], s))[: self.max_skus]
            dropped, skus = len(skus) - len(kept), set(kept)
        items = []
        for sku in sorted(skus):
            score, at, count = self.pop.get(sku, (None, 0.0, 0.0))
            category, price = self.meta.get(sku, (None, None))
            links = [[k, v] for k, v in self.links.get(sku, {}).items()]
            items.append([sku, score, at, count, category, price, links])
        return {"events": self.events, "dropped": dropped, "items": items}


def check_delta(data: Any) -> tuple[list[Item], int]:
    """The items and event count of a delta as :meth:`SkuDeltas.to_data` writes it;
    :class:`BadState` on anything else (a record is data, never trusted). Inlined type
    checks: this ran once per SKU per receiving worker (cProfile: half the merge time
    with one call per field)."""
    if not isinstance(data, dict):
        raise BadState("candidate delta: expected an object")
    events = integer(data.get("events"), "candidate delta events")
    items: list[Item] = []
    for row in pairs(data.get("items"), "candidate delta items", MAX_DELTA_SKUS):
        if len(row) != 7:
            raise BadState("candidate delta: expected 7 fields per SKU")
        sku, score, at, count, category, price, links = row
        if not (_is_text(sku) and (score is None or _is_number(score)) and _is_number(at)
                and _is_number(count) and (category is None or _is_text(category))
                and (price is None or _is_number(price))):  # fmt: skip
            raise BadState(f"candidate delta: a malformed record for SKU {str(sku)[:40]!r}")
        items.append((sku, score, at, count, category, price, _links(links)))
    return items, events


def _is_number(v: Any) -> bool:
    return (type(v) is float or type(v) is int) and math.isfinite(v)


def _is_text(v: Any) -> bool:
    return type(v) is str and len(v) <= 1000


def _links(value: Any) -> list[tuple[str, float]]:
    rows = pairs(value, "neighbours", 1000)
    out = []
    for r in rows:
        if len(r) != 2 or not _is_text(r[0]) or not _is_number(r[1]):
            raise BadState("neighbours: expected [sku, weight] pairs")
        out.append((r[0], float(r[1])))
    return out
