"""Offer candidates learned from the stream: co-occurrence, popularity, categories.

Population statistics (one per worker), updated by every view, cart add and purchase:

- **popularity**: a decayed score per SKU (half-life ``half_life_s`` of event time), so
  "trending" means recently, not ever;
- **co-occurrence**: SKUs viewed, carted or bought close together by the same customer
  (within ``session_s``), also decayed; each SKU keeps its ``max_neighbours`` strongest;
- each SKU's category and last price.

Memory is bounded: at most ``max_skus`` SKUs are tracked (the least popular are dropped
when the cap is passed; an untracked SKU gets no neighbour list) and ``max_neighbours``
neighbours each, so state is O(max_skus x max_neighbours) whatever the catalogue size.
Work per update is O(log max_skus): the tracked SKUs are kept ordered by a key in log
space (a decayed score's order does not change as time passes), so eviction and the top
lists never sort the catalogue.

>>> stats = CandidateStats()
>>> stats.observe("a", "shoes", 50.0, ts=0.0, weight=1.0, recent=[])
>>> stats.observe("b", "shoes", 40.0, ts=10.0, weight=1.0, recent=[("a", 0.0)])
>>> dict(stats.neighbours("a"))
{'b': 1.0}
>>> [sku for sku, _ in stats.top(2, now=10.0)]
['b', 'a']
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from types import MappingProxyType
from typing import Any

from sortedcontainers import SortedList

from streamcrm.sharing.sku_deltas import SkuDeltas, check_delta

_NONE: dict[str, float] = {}
MAX_SKUS = 20_000  # tracked SKUs by default (a worker's --tracked-skus)


@dataclass(slots=True)
class CandidateStats:
    half_life_s: float = 6 * 3600.0
    session_s: float = 1800.0
    max_skus: int = MAX_SKUS
    max_neighbours: int = 20
    refresh_every: int = 500
    popularity: dict[str, tuple[float, float]] = field(default_factory=dict)  # sku -> (score, at)
    cooc: dict[str, dict[str, float]] = field(default_factory=dict)
    catalog: dict[str, tuple[str, float]] = field(default_factory=dict)  # sku -> (category, price)
    # Every tracked SKU ordered by decayed popularity: (log-space key, first-seen seq, sku).
    # A decayed score's order never changes as time passes, so the key is fixed until the
    # SKU's next interaction: updates, eviction of the least popular and the top lists are
    # O(log n) or O(k), not a sort of the catalogue.
    _ranked: SortedList = field(default_factory=SortedList)
    _rank_of: dict[str, tuple[float, int]] = field(default_factory=dict)  # sku -> (key, seq)
    _origin: float | None = None  # the time keys are measured from (precision)
    _seq: int = 0
    _top: list[tuple[str, float]] = field(default_factory=list)
    _top_by_category: dict[str, list[str]] = field(default_factory=dict)
    _updates: int = 0
    _refreshed_at: int = -1
    _changed: set[str] = field(default_factory=set)  # SKUs changed since take_changes()
    # All-time (undecayed) weighted interaction counts, ordered: the exact-popularity
    # baseline the offers are measured against (O(log n) per update, O(k) per top list).
    counts: dict[str, float] = field(default_factory=dict)
    _by_count: SortedList = field(default_factory=SortedList)  # (-count, sku)
    # Sharing on (:meth:`share`): this worker's own interactions since the last export.
    _outbox: SkuDeltas | None = None

    def observe(
        self, sku: str, category: str | None, price: float | None, *, ts: float, weight: float,
        recent: Iterable[tuple[str, float]],
    ) -> None:  # fmt: skip
        """One interaction; ``recent`` are the customer's earlier (sku, time) interactions."""
        entry = self.popularity.get(sku)
        score = weight
        if entry is not None:  # the popularity_at formula, inline (once per interaction)
            score += entry[0] * math.pow(0.5, max(ts - entry[1], 0.0) / self.half_life_s)
        self.popularity[sku] = (score, ts)
        self._rerank(sku, score, ts)
        self._count(sku, self.counts.get(sku, 0.0) + weight)
        self._changed.add(sku)
        if category is not None or price is not None:
            old_category, old_price = self.catalog.get(sku, ("unknown", 0.0))
            self.catalog[sku] = (
                category or old_category,
                price if price is not None else old_price,
            )
        tracked, session_s = self.popularity, self.session_s
        for other, at in recent:
            if other != sku and ts - at <= session_s:
                self._link(sku, other, weight)
                if other in tracked:  # no neighbour list for an evicted SKU: memory stays bounded
                    self._link(other, sku, weight)
        self._updates += 1
        if self._outbox is not None:
            self._outbox.observe(sku, category, price, ts, weight, recent, session_s)
        if len(self.popularity) > self.max_skus:
            self._evict()

    def share(self) -> None:
        """Record this worker's interactions for :meth:`export_delta` from now on."""
        if self._outbox is None:
            self._outbox = SkuDeltas(self.half_life_s, self.max_skus, self.max_neighbours)

    def export_delta(self) -> dict[str, Any] | None:
        """This worker's own interactions since the last export, per SKU, as data (at most
        ``max_skus`` SKUs: :mod:`streamcrm.sharing.sku_deltas`); None if there were none."""
        self.share()
        assert self._outbox is not None
        if not self._outbox.events:
            return None
        delta = self._outbox.to_data()
        self._outbox = SkuDeltas(self.half_life_s, self.max_skus, self.max_neighbours)
        return delta

    def merge_delta(self, delta: Any) -> None:
        """Add another worker's :meth:`export_delta`: popularity decayed to the later of
        the two times and summed, counts and co-occurrence weights summed, the catalogue
        entry replaced; each link is sent forward only and linked back here onto the
        neighbours tracked here (as :meth:`observe` does). Equal to having observed those
        interactions here (up to float rounding, eviction and the order of equal
        weights). Checked: :class:`BadState` on anything else."""
        if delta is None:
            return
        items, events = check_delta(delta)
        for sku, score, at, count, category, price, _ in items:
            self._merge_item(sku, score, at, count, category, price)
        tracked = self.popularity
        for sku, *_, links in items:
            if links and sku in tracked:  # as in observe: no neighbour list for an untracked SKU
                it = iter(links)
                pairs = list(zip(it, it, strict=False))  # an even length: checked
                self._link_all(sku, pairs)
                self._link_back(sku, pairs)
        self._updates += events
        if len(self.popularity) > self.max_skus:
            self._evict()

    def _merge_item(
        self, sku: str, score: float, at: float, count: float, category: str | None,
        price: float | None,
    ) -> None:  # fmt: skip
        entry = self.popularity.get(sku)
        if entry is not None:
            when, half_life = max(at, entry[1]), self.half_life_s
            score = score * math.pow(0.5, (when - at) / half_life) + entry[0] * math.pow(
                0.5, (when - entry[1]) / half_life
            )
            at = when
        self.popularity[sku] = (score, at)
        self._rerank(sku, score, at)
        self._count(sku, self.counts.get(sku, 0.0) + count)
        self._changed.add(sku)
        if category is not None or price is not None:
            old_category, old_price = self.catalog.get(sku, ("unknown", 0.0))
            self.catalog[sku] = (category or old_category, old_price if price is None else price)

    def _count(self, sku: str, count: float) -> None:
        old = self.counts.get(sku)
        if old is not None:
            self._by_count.remove((-old, sku))
        self.counts[sku] = count
        self._by_count.add((-count, sku))

    def top_counts(self, n: int) -> list[str]:
        """The ``n`` SKUs with the most interactions ever (weighted, no decay), ties by SKU."""
        return [sku for _, sku in self._by_count.islice(0, n)]

    def _key(self, score: float, at: float) -> float:
        """log2 of the score decayed to the origin: larger key = more popular, at any time."""
        if self._origin is None:
            self._origin = at
        return math.log2(score) + (at - self._origin) / self.half_life_s

    def _rerank(self, sku: str, score: float, at: float) -> None:
        previous = self._rank_of.get(sku)
        if previous is None:
            seq = self._seq
            self._seq += 1
        else:
            seq = previous[1]
            self._ranked.remove((previous[0], seq, sku))
        key = self._key(score, at)
        self._rank_of[sku] = (key, seq)
        self._ranked.add((key, seq, sku))

    def _link(self, a: str, b: str, weight: float) -> None:
        self._changed.add(a)
        neighbours = self.cooc.get(a)
        if neighbours is None:
            neighbours = self.cooc[a] = {}
        neighbours[b] = neighbours.get(b, 0.0) + weight
        if len(neighbours) > 2 * self.max_neighbours:
            keep = sorted(neighbours.items(), key=lambda kv: -kv[1])[: self.max_neighbours]
            self.cooc[a] = dict(keep)

    def _link_all(self, a: str, links: Iterable[tuple[str, float]]) -> None:
        """``_link(a, b, weight)`` for each of ``links``, in order (one lookup of a's list)."""
        self._changed.add(a)
        neighbours = self.cooc.get(a)
        if neighbours is None:
            neighbours = self.cooc[a] = {}
        cap = 2 * self.max_neighbours
        for b, weight in links:
            neighbours[b] = neighbours.get(b, 0.0) + weight
            if len(neighbours) > cap:
                keep = sorted(neighbours.items(), key=lambda kv: -kv[1])[: self.max_neighbours]
                neighbours = self.cooc[a] = dict(keep)

    def _link_back(self, b: str, links: Iterable[tuple[str, float]]) -> None:
        """``_link(a, b, weight)`` for each of ``links`` onto a tracked ``a`` (the reverse
        of each link a delta sent: as :meth:`observe`, no list for an untracked SKU)."""
        tracked, cooc, changed = self.popularity, self.cooc, self._changed
        cap = 2 * self.max_neighbours
        for a, weight in links:
            if a in tracked:
                changed.add(a)
                neighbours = cooc.get(a)
                if neighbours is None:
                    neighbours = cooc[a] = {}
                neighbours[b] = neighbours.get(b, 0.0) + weight
                if len(neighbours) > cap:
                    keep = sorted(neighbours.items(), key=lambda kv: -kv[1])[: self.max_neighbours]
                    cooc[a] = dict(keep)

    def _evict(self) -> None:
        """Drop the least popular SKUs (the earliest seen among equals) down to the cap."""
        while len(self.popularity) > self.max_skus:
            _, _, sku = self._ranked.pop(0)
            del self._rank_of[sku]
            self._changed.add(sku)
            self.popularity.pop(sku, None)
            self.cooc.pop(sku, None)
            self.catalog.pop(sku, None)
            count = self.counts.pop(sku, None)
            if count is not None:
                self._by_count.remove((-count, sku))

    def _maybe_refresh(self, now: float) -> None:
        # Re-rank once a quarter of the tracked SKUs' worth of updates arrived (every update
        # for a tiny catalogue), at most every refresh_every: a full sort per offer was 38%
        # of the decision path's time on a 400-SKU catalogue (cProfile).
        moved = self._updates - self._refreshed_at
        due = min(self.refresh_every, max(1, len(self.popularity) // 4))
        if moved and (moved >= due or not self._top):
            self._refresh(now)

    def ranked(self, n: int) -> list[str]:
        """The ``n`` most popular SKUs, best first (the earliest seen first among equals)."""
        ranked = self._ranked
        start = max(len(ranked) - n, 0)
        if start:  # take in every SKU tied with the last one kept
            start = ranked.bisect_left((ranked[start][0], -1, ""))
        # Ascending (key, seq): a stable sort on the key alone, descending, keeps equal keys
        # in ascending seq (reverse=True is stable) and is linear on this near-sorted input.
        best = sorted(ranked.islice(start), key=itemgetter(0), reverse=True)
        return [sku for _, _, sku in best[:n]]

    def _refresh(self, now: float) -> None:
        """Recompute the cached top lists (cheap to read per offer, refreshed as data moves)."""
        self._refreshed_at = self._updates
        ranked = self.ranked(2000)
        decayed = self.popularity_at(ranked[:100], now)
        self._top = list(decayed.items())
        by_category: dict[str, list[str]] = {}
        for sku in ranked:
            category = self.catalog.get(sku, ("unknown", 0.0))[0]
            bucket = by_category.setdefault(category, [])
            if len(bucket) < 20:
                bucket.append(sku)
        self._top_by_category = by_category

    @property
    def updates(self) -> int:
        return self._updates

    def take_changes(self) -> set[str]:
        """The SKUs whose record changed (or that were dropped) since the last call."""
        changed, self._changed = self._changed, set()
        return changed

    def item(self, sku: str) -> list[Any] | None:
        """One SKU's statistics as plain data, or None if it is not tracked:
        ``[score, at, seq, category, price, [[neighbour, weight], ...], count]``."""
        entry = self.popularity.get(sku)
        if entry is None:
            return None
        category, price = self.catalog.get(sku, (None, None))
        neighbours = [[k, v] for k, v in self.cooc.get(sku, _NONE).items()]
        seq, count = self._rank_of[sku][1], self.counts.get(sku, 0.0)
        return [entry[0], entry[1], seq, category, price, neighbours, count]

    def restore_item(
        self, sku: str, item: tuple[float, float, int, Any, Any, dict[str, float], float]
    ) -> None:
        """Put back one SKU as :meth:`item` gave it (checked by the caller)."""
        score, at, seq, category, price, neighbours, count = item
        self._count(sku, count)
        self.popularity[sku] = (score, at)
        self._rank_of[sku] = (key := self._key(score, at), seq)
        self._ranked.add((key, seq, sku))
        if category is not None:
            self.catalog[sku] = (category, price)
        if neighbours:
            self.cooc[sku] = neighbours

    def scalars(self) -> dict[str, Any]:
        """Everything but the per-SKU records: counters and the cached top lists."""
        return {
            "origin": self._origin, "seq": self._seq, "updates": self._updates,
            "refreshed_at": self._refreshed_at, "top": [[k, v] for k, v in self._top],
            "top_by_category": self._top_by_category,
        }  # fmt: skip

    def restore_scalars(
        self, origin: float | None, seq: int, updates: int, refreshed_at: int,
        top: list[tuple[str, float]], top_by_category: dict[str, list[str]],
    ) -> None:  # fmt: skip
        """Counters before items (the keys are measured from ``origin``)."""
        self._origin, self._seq, self._updates = origin, seq, updates
        self._refreshed_at, self._top, self._top_by_category = refreshed_at, top, top_by_category

    def neighbours(self, sku: str) -> Mapping[str, float]:
        """Read-only (a copy per seed per offer was measurable)."""
        return MappingProxyType(self.cooc.get(sku, _NONE))

    def neighbour_items(self, sku: str) -> Iterable[tuple[str, float]]:
        """``neighbours(sku).items()`` without the proxy (a view: read-only, as the proxy)."""
        return self.cooc.get(sku, _NONE).items()

    def top(self, n: int, now: float) -> list[tuple[str, float]]:
        self._maybe_refresh(now)
        return self._top[:n]

    def top_in(self, category: str, now: float) -> list[str]:
        self._maybe_refresh(now)
        return self._top_by_category.get(category, [])

    def popularity_at(self, skus: Iterable[str], now: float) -> dict[str, float]:
        """Each SKU's popularity decayed to ``now`` (0.0 if unseen); an offer asks for ~80."""
        get, half_life, pow_ = self.popularity.get, self.half_life_s, math.pow
        out: dict[str, float] = {}
        for sku in skus:
            entry = get(sku)
            if entry is None:
                out[sku] = 0.0
            else:
                score, at = entry
                age = now - at
                # max(age, 0.0) without the call (the same value, -0.0 and all).
                out[sku] = score * pow_(0.5, (0.0 if age < 0.0 else age) / half_life)
        return out
