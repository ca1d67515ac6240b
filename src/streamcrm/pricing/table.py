"""A bounded table of SKU demand: total state capped, whatever the catalogue size.

At most ``capacity`` SKUs (default 10,000) are tracked, the least recently active
evicted first (an ordered dict: O(1) per event). An evicted SKU starts again with no
baseline, so it needs ``min_baseline_s`` of history before it can be suggested again:
the long tail that is seldom seen gets no suggestions, which it could not support
anyway (too few events for the test's minimum counts). This is a mutable cache owned by
whoever runs it; every decision made on it is the pure :func:`~streamcrm.pricing.suggest.observe`.

>>> from streamcrm.events import Event
>>> table = SkuTable(capacity=2)
>>> for i in range(3):
...     _ = table.observe(Event(f"e{i}", "product_viewed", "c1", float(i), "web", None,
...                             {"sku": f"s{i}", "category": "x", "price": 1.0}), PricingConfig())
>>> sorted(table.skus()), table.evicted
(['s1', 's2'], 1)
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from typing import Any

from streamcrm.events import Event
from streamcrm.pricing.demand import Counts, SkuDemand
from streamcrm.pricing.suggest import PricingConfig, observe, observe_counts, skus_of


class SkuTable:
    def __init__(self, capacity: int = 10_000, *, track_gone: bool = False) -> None:
        if capacity < 1:
            msg = f"capacity must be >= 1 (got {capacity})"
            raise ValueError(msg)
        self.capacity = capacity
        self.evicted = 0
        self.outcomes: Counter[str] = Counter()
        self._data: OrderedDict[str, SkuDemand] = OrderedDict()
        # The evicted SKUs, kept for a shell that mirrors the table (take_gone) only.
        self.track_gone = track_gone
        self.gone: list[str] = []

    def observe(self, event: Event, cfg: PricingConfig) -> tuple[dict[str, Any], ...]:
        """Count ``event`` for every SKU it names; return the suggestions it triggers."""
        out: list[dict[str, Any]] = []
        for sku, _ in skus_of(event):
            before = self._data.pop(sku, None)
            after, emitted = observe(before, event, cfg, sku=sku)
            if after is not None:
                self._put(sku, after)
            self.outcomes.update("price_suggested" for _ in emitted)
            out += emitted
        return tuple(out)

    def add_counts(
        self, sku: str, counts: Counts, ts: float, cfg: PricingConfig
    ) -> tuple[dict[str, Any], ...]:
        """Count one row of a worker's delta (:mod:`streamcrm.pricing.deltas`) and test it."""
        after, emitted = observe_counts(self._data.pop(sku, None), sku, counts, ts, cfg)
        self._put(sku, after)
        self.outcomes.update("price_suggested" for _ in emitted)
        return emitted

    def _put(self, sku: str, demand: SkuDemand) -> None:
        self._data[sku] = demand
        if len(self._data) > self.capacity:
            gone, _ = self._data.popitem(last=False)
            self.evicted += 1
            if self.track_gone:
                self.gone.append(gone)

    def restore(self, demand: SkuDemand) -> None:
        """Put back a SKU's state as a changelog restored it (least recent first)."""
        self._data.pop(demand.sku, None)
        self._put(demand.sku, demand)

    def drop(self, sku: str) -> None:
        self._data.pop(sku, None)

    def take_gone(self) -> list[str]:
        """The SKUs evicted since the last call (the shell deletes them from its table)."""
        gone, self.gone = self.gone, []
        return gone

    def skus(self) -> list[str]:
        return list(self._data)

    def get(self, sku: str) -> SkuDemand | None:
        return self._data.get(sku)

    def __len__(self) -> int:
        return len(self._data)
