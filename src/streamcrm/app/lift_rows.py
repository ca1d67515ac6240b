"""The worker's rows for the lift readout: one per resolved abandoned cart (the
``cart_resolved`` records, :mod:`streamcrm.policies.cart_resolution`), the most recent
``limit`` kept, as compact tuples. The readout (a bootstrap) is recomputed only when rows
were added and at most every ``every_s`` seconds, so a dashboard polling /stats costs little.

>>> rows = LiftRows(limit=3)
>>> rows.add([{"kind": "cart_resolved", "customer_id": "c1", "cart_id": "k1", "arm": "holdout",
...            "recovered": False, "revenue": 0.0, "coupon_sent": False, "coupon_cost": 0.0}])
>>> rows.readout(now=0.0)["customer"]["reason"]
'no resolved abandoned carts in one arm yet'
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from streamcrm.experiments.lift import lift_from_rows
from streamcrm.policies.cart_resolution import KIND

FIELDS = ("customer_id", "cart_id", "arm", "recovered", "revenue", "coupon_sent", "coupon_cost")


class LiftRows:
    def __init__(self, limit: int = 100_000, every_s: float = 10.0, resamples: int = 500) -> None:
        self.rows: deque[tuple[Any, ...]] = deque(maxlen=limit)
        self.every_s = every_s
        self.resamples = resamples
        self.added = 0
        self._cached: tuple[int, float, dict[str, Any]] | None = None

    def add(self, decisions: Iterable[dict[str, Any]]) -> None:
        for d in decisions:
            if d.get("kind") == KIND:
                self.rows.append(tuple(d.get(f) for f in FIELDS))
                self.added += 1

    def readout(self, now: float) -> dict[str, Any]:
        cached = self._cached
        if cached is not None and (cached[0] == self.added or now - cached[1] < self.every_s):
            return cached[2]
        out = lift_from_rows((dict(zip(FIELDS, r, strict=True)) for r in self.rows),
                             resamples=self.resamples)  # fmt: skip
        out["rows_kept"] = len(self.rows)
        self._cached = (self.added, now, out)
        return out
