"""Coupon-abuse anomaly detector: River HalfSpaceTrees over per-customer behaviour.

Four features (:data:`FEATURES`, computed by :mod:`streamcrm.policies.coupon_abuse`):
coupon redemptions in 7 days, cancellations of coupon orders in 30 days, the last
order's value over the customer's own mean, and carts abandoned in 7 days. Scaling is
fixed, not learned: each feature is clipped to its :data:`LIMITS` and HalfSpaceTrees maps
that range onto [0, 1] (an online min-max scaler would let one extreme farmer squash
everyone else into a corner). Scores are in [0, 1], higher is more anomalous; the trees
need one full window of normal traffic before their scores mean anything, so
:attr:`AnomalyDetector.ready` stays false until ``warmup`` examples were learned.

:meth:`~AnomalyDetector.drivers` says which features drove a score: how many standard
deviations each is above the population's running mean (River ``stats.Var``).

>>> det = AnomalyDetector(window_size=50, warmup=100, seed=1)
>>> normal = {"coupon_redemptions_7d": 0.0, "cancels_after_coupon_30d": 0.0,
...           "order_value_ratio": 1.0, "abandoned_carts_7d": 1.0}
>>> for i in range(200):
...     det.learn_one({**normal, "abandoned_carts_7d": float(i % 3)})
>>> farmer = {**normal, "coupon_redemptions_7d": 4.0, "abandoned_carts_7d": 12.0}
>>> det.ready, det.score_one(farmer) > det.score_one(normal)
(True, True)
>>> [d["feature"] for d in det.drivers(farmer)]
['abandoned_carts_7d', 'coupon_redemptions_7d']
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any

from river import anomaly, stats

MODEL_VERSION = "hst-v1"
FEATURES = (
    "coupon_redemptions_7d",
    "cancels_after_coupon_30d",
    "order_value_ratio",
    "abandoned_carts_7d",
)
# The range each feature is scaled from; values beyond it count as the bound. Chosen so
# ordinary behaviour sits low in the range and farming near its top.
LIMITS: dict[str, tuple[float, float]] = {
    "coupon_redemptions_7d": (0.0, 6.0),
    "cancels_after_coupon_30d": (0.0, 6.0),
    "order_value_ratio": (0.0, 5.0),
    "abandoned_carts_7d": (0.0, 15.0),
}


class AnomalyDetector:
    """HalfSpaceTrees with fixed scaling, running feature moments and a warm-up."""

    def __init__(
        self,
        *,
        n_trees: int = 25,
        height: int = 8,
        window_size: int = 250,
        warmup: int = 500,
        seed: int = 7,
    ) -> None:
        limits: dict[Hashable, tuple[float, float]] = {k: v for k, v in LIMITS.items()}
        self._hst = anomaly.HalfSpaceTrees(
            n_trees=n_trees, height=height, window_size=window_size, limits=limits, seed=seed
        )
        self._moments = {f: stats.Var() for f in FEATURES}
        self.warmup = warmup
        self.learned = 0

    @property
    def ready(self) -> bool:
        return self.learned >= self.warmup

    def score_one(self, x: dict[str, float]) -> float:
        """Anomaly score in [0, 1] (does not learn)."""
        return float(min(1.0, max(0.0, self._hst.score_one(_clip(x)))))

    def learn_one(self, x: dict[str, float]) -> None:
        clipped = _clip(x)
        self._hst.learn_one(clipped)
        for name, value in clipped.items():
            self._moments[name].update(value)
        self.learned += 1

    def drivers(self, x: dict[str, float], top: int = 3) -> list[dict[str, Any]]:
        """Features above the population mean, strongest (largest z) first; at least one."""
        rows: list[tuple[float, dict[str, Any]]] = []
        for name in FEATURES:
            value = float(x.get(name, 0.0))
            moment = self._moments[name]
            mean = float(moment.mean.get())
            spread = math.sqrt(max(float(moment.get()), 0.0)) or 1.0
            clipped = min(max(value, LIMITS[name][0]), LIMITS[name][1])
            z = round((clipped - mean) / spread, 3)
            rows.append((z, {"feature": name, "value": value, "mean": round(mean, 4), "z": z}))
        rows.sort(key=lambda r: -r[0])
        above = [r for z, r in rows if z > 0]
        return (above or [r for _, r in rows])[:top]


def _clip(x: dict[str, float]) -> dict[str, float]:
    return {f: min(max(float(x.get(f, 0.0)), LIMITS[f][0]), LIMITS[f][1]) for f in FEATURES}
