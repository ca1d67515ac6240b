"""Price suggestions from demand moves: the test, the bounded change, the rate limit. Pure.

:func:`observe` takes one SKU's demand state and one event and returns the new state and
any ``price_suggestion`` it emits. Each event counts for the SKUs it names (a view, a
cart add, each line of an order), then those SKUs are tested.

**The test** (``poisson_tail_wh``): the window's count ``X`` of a metric against what
the SKU's own baseline rate predicts for the window, ``E = rate x window exposure``; under
"demand unchanged" ``X`` is Poisson(``E``). ``z`` is the Poisson tail probability
(``P(X >= x)`` for a rise, ``P(X <= x)`` for a fall) as a normal deviate, by the
Wilson-Hilferty cube-root approximation of the Poisson-gamma identity. Not the plain
``(X - E) / sqrt(E)``: at the small counts most SKUs have, that one fires on rises about
ten times as often as its nominal rate (a Poisson's right tail is heavy), which is
what a steady-traffic run showed (95 false rises, no false falls). A move counts
when ``|z| >= z_min`` (default 4: the test runs every 5 minutes on every active SKU, so
a loose threshold would fire somewhere all the time), the baseline has at least
``min_baseline_s`` of history (6 h), and there is enough to see: ``X >= min_count``
(10) for a rise, ``E >= min_count`` for a fall. Of the metrics that move, the one with
the largest ``|z|`` is reported, with its two-sided normal p-value and the conversion
(purchases per view) in window and baseline.

**The change** follows demand with an elasticity factor: ``factor x (X / E - 1)``,
clipped to ``+-max_change_percent`` (default 0.1 and 15%): demand four times the
baseline suggests +15%, half of it -5%. **Rate limit**: at most one suggestion per SKU
per ``min_interval_s`` (6 h). Suggestions only: nothing here changes a price.

>>> from streamcrm.events import Event
>>> def view(ts): return Event(f"e{ts}", "product_viewed", "c1", ts, "web", None,
...                            {"sku": "s1", "category": "shoes", "price": 50.0})
>>> cfg, d, out = PricingConfig(), None, ()
>>> for minute in range(0, 12 * 60, 30):  # a view every 30 minutes for 12 hours
...     d, out = observe(d, view(minute * 60.0), cfg)
>>> out
()
>>> for second in range(0, 1200, 60):  # then a view a minute
...     d, out = observe(d, view(12 * 3600.0 + second), cfg)
...     if out: break
>>> out[0]["direction"], out[0]["change_percent"], out[0]["evidence"]["metric"]
('up', 15.0, 'views')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from streamcrm.events import Event, format_ts
from streamcrm.pricing.demand import (
    CART_ADDS,
    METRICS,
    PURCHASES,
    VIEWS,
    Counts,
    DemandConfig,
    SkuDemand,
    add_counts,
    baseline_exposure,
    baseline_rate,
    window_count,
    window_exposure,
)

OUTCOMES = ("price_suggested",)


@dataclass(frozen=True, slots=True)
class PricingConfig:
    demand: DemandConfig = field(default_factory=DemandConfig)
    z_min: float = 4.0
    min_count: int = 10
    min_baseline_s: float = 6 * 3600.0
    elasticity: float = 0.1
    max_change_percent: float = 15.0
    min_interval_s: float = 6 * 3600.0
    max_skus: int = 10_000  # SKUs tracked per owner (pricing/table.py), least recent out


def skus_of(event: Event) -> list[tuple[str, int]]:
    """The (SKU, metric) pairs an event counts for; none for other events."""
    body = event.body
    if event.type == "product_viewed":
        return [(str(body["sku"]), VIEWS)]
    if event.type == "cart_item_added":
        return [(str(body["sku"]), CART_ADDS)]
    if event.type == "order_placed":
        return [(str(sku), PURCHASES) for sku in dict.fromkeys(ln["sku"] for ln in body["lines"])]
    return []


def observe(
    d: SkuDemand | None, event: Event, cfg: PricingConfig, sku: str | None = None
) -> tuple[SkuDemand | None, tuple[dict[str, Any], ...]]:
    """Count ``event`` for one SKU (``sku``, default: the event's first) and test it."""
    pairs = [p for p in skus_of(event) if sku is None or p[0] == sku][:1]
    if not pairs:
        return d, ()
    name, metric = pairs[0]
    one = (int(metric == VIEWS), int(metric == CART_ADDS), int(metric == PURCHASES))
    return observe_counts(d, name, one, event.ts, cfg)


def observe_counts(
    d: SkuDemand | None, sku: str, counts: Counts, ts: float, cfg: PricingConfig
) -> tuple[SkuDemand, tuple[dict[str, Any], ...]]:
    """Count ``counts`` at ``ts`` for ``sku`` and test it: one event (:func:`observe`) or
    one row of a worker's delta (:mod:`streamcrm.pricing.deltas`). The test runs when
    ``ts`` opens a bucket newer than any the SKU has, on the buckets before it; counts for
    an older bucket (a lagging worker's) are added without a test."""
    index = int(ts // cfg.demand.bucket_s)
    fresh = d is None or not d.buckets or index > d.buckets[-1][0]
    d = add_counts(d, sku, counts, ts, cfg.demand)
    suggestion = evaluate(d, ts, cfg) if fresh else None
    if suggestion is None:
        return d, ()
    if d.last_suggested_at is not None and ts - d.last_suggested_at < cfg.min_interval_s:
        return d, ()
    return replace(d, last_suggested_at=ts), (suggestion,)


def evaluate(d: SkuDemand, ts: float, cfg: PricingConfig) -> dict[str, Any] | None:
    """The ``price_suggestion`` the SKU's demand at ``ts`` supports, or None."""
    dc = cfg.demand
    index = int(ts // dc.bucket_s)
    if baseline_exposure(d, dc) < _min_exposure(cfg):
        return None
    exposure = window_exposure(d, index, dc)
    best: tuple[float, int, int, float] | None = None
    for metric in (VIEWS, CART_ADDS, PURCHASES):
        observed = window_count(d, metric, index, dc)
        expected = baseline_rate(d, metric, dc) * exposure
        if expected <= 0:
            continue
        if max(observed, expected) < cfg.min_count:  # too few to tell a rise or a fall
            continue
        z = tail_z(observed, expected)
        if abs(z) >= cfg.z_min and (best is None or abs(z) > abs(best[0])):
            best = (z, metric, observed, expected)
    if best is None:
        return None
    z, metric, observed, expected = best
    change = max(-cfg.max_change_percent, min(cfg.max_change_percent,
                 cfg.elasticity * (observed / expected - 1) * 100))  # fmt: skip
    return _body(d, ts, cfg, (z, metric, observed, expected), round(change, 2))


def tail_z(x: int, mu: float) -> float:
    """The Poisson(``mu``) tail of ``x`` as a normal deviate: > 0 when ``x`` is high.

    ``P(X >= x) = P(Gamma(x) <= mu)`` and ``P(X <= x) = P(Gamma(x + 1) > mu)``; a
    Gamma(k) has ``(G / k) ** (1/3)`` close to normal, mean ``1 - 1/(9k)``, variance
    ``1/(9k)`` (Wilson-Hilferty).

    >>> round(tail_z(23, 10.0), 2), round(tail_z(0, 10.0), 2)  # exact deviates: 3.44, -3.91
    (3.42, -3.8)
    """
    if x > mu:
        k = float(x)
        return 3 * math.sqrt(k) * (1 - 1 / (9 * k) - math.pow(mu / k, 1 / 3))
    k = x + 1.0
    return -3 * math.sqrt(k) * (math.pow(mu / k, 1 / 3) - 1 + 1 / (9 * k))


def _min_exposure(cfg: PricingConfig) -> float:
    """``min_baseline_s`` of history, as the decayed exposure it amounts to."""
    dc = cfg.demand
    q = math.exp(-dc.bucket_s / dc.baseline_s)
    return dc.bucket_s * (1 - q ** int(cfg.min_baseline_s // dc.bucket_s)) / (1 - q)


def _body(
    d: SkuDemand, ts: float, cfg: PricingConfig, test: tuple[float, int, int, float], change: float
) -> dict[str, Any]:
    dc, (z, metric, observed, expected) = cfg.demand, test
    index = int(ts // dc.bucket_s)
    evidence: dict[str, Any] = {
        "metric": METRICS[metric], "test": "poisson_tail_wh", "window_s": dc.window_s,
        "baseline_s": dc.baseline_s, "window_count": observed,
        "expected_count": round(expected, 3), "z": round(z, 3),
        "p_value": math.erfc(abs(z) / math.sqrt(2)),
    }  # fmt: skip
    views = window_count(d, VIEWS, index, dc)
    if views:
        bought = window_count(d, PURCHASES, index, dc)
        evidence["conversion_window"] = min(1.0, round(bought / views, 4))
    if d.baseline[VIEWS] > 0:
        evidence["conversion_baseline"] = min(1.0, round(d.baseline[PURCHASES] / d.baseline[VIEWS], 4))
    return {
        "event_id": f"price-{d.sku}-{int(ts)}", "type": "price_suggestion", "ts": format_ts(ts),
        "sku": d.sku, "direction": "up" if z > 0 else "down", "change_percent": change,
        "max_change_percent": cfg.max_change_percent, "evidence": evidence,
    }  # fmt: skip
