"""Per-SKU demand on event time: a short sliding window against the SKU's own baseline. Pure.

Three counts (views, cart adds, purchases) in a sliding window of the last
``window_buckets`` complete buckets of ``bucket_s`` seconds (default 12 x 5 min = 1 h;
the bucket still filling is kept beside them but not tested, so a test triggered by an
event does not count the event that triggered it). A bucket that leaves the window is
folded into the baseline: exponentially decayed counts with time constant
``baseline_s`` (default 24 h), so the baseline is the SKU's recent past *before* the
window and never includes it. The baseline's rate is its decayed count over its decayed
exposure (the same weights summed over the buckets folded, about ``tau * (1 - exp(-T /
tau))`` for ``T`` seconds of history). State per SKU is a
fixed size (at most ``window_buckets + 1`` buckets plus six numbers), whatever the traffic.

>>> cfg = DemandConfig()
>>> d = None
>>> for minute in range(0, 24 * 60, 10):  # one view every 10 minutes for a day
...     d = add(d, "s1", VIEWS, minute * 60.0, cfg)
>>> index = int(24 * 3600 // cfg.bucket_s)  # the next bucket: the whole last hour is complete
>>> round(baseline_rate(d, VIEWS, cfg) * 3600, 2), window_count(d, VIEWS, index, cfg)
(6.0, 6)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

VIEWS, CART_ADDS, PURCHASES = 0, 1, 2
METRICS = ("views", "cart_adds", "purchases")


@dataclass(frozen=True, slots=True)
class DemandConfig:
    bucket_s: float = 300.0
    window_buckets: int = 12
    baseline_s: float = 86_400.0  # the baseline's time constant (decay)

    @property
    def window_s(self) -> float:
        return self.bucket_s * self.window_buckets


Counts = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class SkuDemand:
    sku: str
    first_bucket: int  # the first bucket this SKU was seen in
    buckets: tuple[tuple[int, Counts], ...] = ()  # (bucket index, counts), oldest first
    baseline: tuple[float, float, float] = (0.0, 0.0, 0.0)  # decayed counts
    folded_to: int | None = None  # the last bucket folded into the baseline
    last_suggested_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SkuDemand:
        return cls(
            data["sku"],
            int(data["first_bucket"]),
            tuple((int(i), (int(c[0]), int(c[1]), int(c[2]))) for i, c in data["buckets"]),
            (float(data["baseline"][0]), float(data["baseline"][1]), float(data["baseline"][2])),
            data["folded_to"],
            data["last_suggested_at"],
        )


def add(d: SkuDemand | None, sku: str, metric: int, ts: float, cfg: DemandConfig) -> SkuDemand:
    """Count one event of ``metric`` at ``ts``; an event older than the window is dropped."""
    one = (1 if metric == VIEWS else 0, 1 if metric == CART_ADDS else 0, 1 if metric == PURCHASES else 0)
    return add_counts(d, sku, one, ts, cfg)


def add_counts(d: SkuDemand | None, sku: str, counts: Counts, ts: float, cfg: DemandConfig) -> SkuDemand:
    """Count ``counts`` (views, cart adds, purchases) in the bucket of ``ts``: one event, or
    a worker's delta for that bucket (:mod:`streamcrm.pricing.deltas`); counts older than
    the window are dropped."""
    index = int(ts // cfg.bucket_s)
    d = advance(d or SkuDemand(sku, index), index, cfg)
    newest = d.buckets[-1][0] if d.buckets else index
    if index < newest - cfg.window_buckets:
        return d  # too late for the window (already folded into the baseline)
    if index < d.first_bucket:  # another worker's earlier share arrived second
        d = replace(d, first_bucket=index)
    found = [b for b in d.buckets if b[0] == index]
    old = found[0][1] if found else (0, 0, 0)
    bumped = (old[0] + counts[0], old[1] + counts[1], old[2] + counts[2])
    rest = [b for b in d.buckets if b[0] != index]
    merged = sorted([*rest, (index, bumped)])
    return replace(d, buckets=tuple(merged))


def advance(d: SkuDemand, index: int, cfg: DemandConfig) -> SkuDemand:
    """Fold every bucket that has left the window before bucket ``index`` (still filling)."""
    oldest_kept = index - cfg.window_buckets
    leaving = [b for b in d.buckets if b[0] < oldest_kept]
    target = oldest_kept - 1
    if d.folded_to is not None and target <= d.folded_to:
        return d
    baseline, folded = d.baseline, d.folded_to
    for bucket, counts in leaving:
        baseline, folded = _fold(baseline, folded, bucket, counts, cfg)
    if target >= d.first_bucket:  # empty buckets up to the window still decay it
        baseline, folded = _fold(baseline, folded, target, (0, 0, 0), cfg)
    kept = tuple(b for b in d.buckets if b[0] >= oldest_kept)
    return replace(d, buckets=kept, baseline=baseline, folded_to=folded)


def _fold(
    baseline: tuple[float, float, float], folded: int | None, bucket: int, counts: Counts, cfg: DemandConfig
) -> tuple[tuple[float, float, float], int]:
    if folded is not None and bucket <= folded:
        return baseline, folded
    steps = bucket - folded if folded is not None else 0
    decay = math.exp(-steps * cfg.bucket_s / cfg.baseline_s)
    b0, b1, b2 = (b * decay + c for b, c in zip(baseline, counts, strict=True))
    return (b0, b1, b2), bucket


def baseline_exposure(d: SkuDemand, cfg: DemandConfig) -> float:
    """Decayed seconds of history in the baseline (0 before the first fold)."""
    if d.folded_to is None:
        return 0.0
    # The folded buckets' weights, 1, q, q^2, ... (q the decay per bucket), times a bucket.
    n = d.folded_to - d.first_bucket + 1
    q = math.exp(-cfg.bucket_s / cfg.baseline_s)
    return cfg.bucket_s * (1.0 - q**n) / (1.0 - q)


def baseline_rate(d: SkuDemand, metric: int, cfg: DemandConfig) -> float:
    """Events per second in the baseline (0 without history)."""
    exposure = baseline_exposure(d, cfg)
    return d.baseline[metric] / exposure if exposure > 0 else 0.0


def window_count(d: SkuDemand, metric: int, index: int, cfg: DemandConfig) -> int:
    """Events of ``metric`` in the complete buckets of the window before bucket ``index``."""
    return sum(c[metric] for i, c in d.buckets if index - cfg.window_buckets <= i < index)


def window_exposure(d: SkuDemand, index: int, cfg: DemandConfig) -> float:
    """Seconds of the SKU's life the window before bucket ``index`` covers."""
    start = max(index - cfg.window_buckets, d.first_bucket)
    return max(index - start, 0) * cfg.bucket_s
