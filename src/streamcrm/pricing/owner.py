"""The owner of demand-topic partitions: workers' deltas merged into its SKU table, each
(sender, seq) once. No I/O; the worker's shell is app/pricing.py.

The demand topic is at-least-once: an owner that merged a delta and wrote the SKU's
state may stop before its consumer offset is committed, and the next owner reads the
delta again (a producer retry can send one twice too). So each SKU's stored record holds,
beside its demand, the last ``seq`` merged per sender (``seen``; at most
:data:`MAX_SENDERS`, the least recently merged out), and a restored SKU skips exactly the
deltas its state already counts. A sender's records of one SKU reach the owner in the
order sent (one key, one partition), so a ``seq`` at or below the last merged one is a
redelivery, as in the learner exchange (sharing/learners.py).

>>> from streamcrm.pricing.deltas import Delta
>>> owner, delta = SkuOwner(), Delta("s1", [(600.0, (2, 1, 0))], "w1", 1)
>>> owner.merge(delta, PricingConfig()), owner.merge(delta, PricingConfig())
((), None)
>>> owner.seen["s1"], owner.duplicates
({'w1': 1}, 1)
"""

from __future__ import annotations

from typing import Any

import orjson

from streamcrm.pricing.deltas import Delta
from streamcrm.pricing.demand import SkuDemand
from streamcrm.pricing.suggest import PricingConfig
from streamcrm.pricing.table import SkuTable

MAX_SENDERS = 16  # per SKU; a sender is one worker incarnation


class SkuOwner:
    def __init__(self, capacity: int = 10_000) -> None:
        self.table = SkuTable(capacity, track_gone=True)
        self.seen: dict[str, dict[str, int]] = {}  # sku -> sender -> last seq merged
        self.duplicates = 0

    def merge(self, delta: Delta, cfg: PricingConfig) -> tuple[dict[str, Any], ...] | None:
        """Count the delta's rows and test them: the suggestions; None (nothing changed)
        if this sender's ``seq`` was merged already. A delta without one is always new."""
        seen = self.seen.get(delta.sku, {})
        if delta.sender is not None and delta.seq is not None:
            if delta.seq <= seen.get(delta.sender, 0):
                self.duplicates += 1
                return None
            seen = {s: q for s, q in seen.items() if s != delta.sender}
            seen[delta.sender] = delta.seq  # last: the most recently merged
            while len(seen) > MAX_SENDERS:
                del seen[next(iter(seen))]
        emitted: list[dict[str, Any]] = []
        for ts, counts in delta.rows:
            emitted += self.table.add_counts(delta.sku, counts, ts, cfg)
        if self.table.get(delta.sku) is not None:
            self.seen[delta.sku] = seen
        return tuple(emitted)

    def take_gone(self) -> list[str]:
        """The SKUs evicted since the last call (their ``seen`` goes with them)."""
        gone = self.table.take_gone()
        for sku in gone:
            self.seen.pop(sku, None)
        return gone

    def stored(self, sku: str) -> bytes | None:
        """The SKU's table record: its demand and its ``seen``, one JSON object."""
        demand = self.table.get(sku)
        if demand is None:
            return None
        return orjson.dumps({**demand.to_dict(), "seen": self.seen.get(sku, {})})

    def restore(self, value: bytes) -> None:
        """Put back a SKU's record as :meth:`stored` wrote it (or one without ``seen``);
        ``ValueError``/``KeyError``/``TypeError``/``IndexError`` if it is not one."""
        data = orjson.loads(value)
        seen = data.pop("seen", {})
        if not isinstance(seen, dict) or not all(
            type(s) is str and type(q) is int for s, q in seen.items()
        ):
            msg = "pricing record: seen is not an object of sender -> seq"
            raise ValueError(msg)
        demand = SkuDemand.from_dict(data)
        self.table.restore(demand)
        self.seen[demand.sku] = seen
