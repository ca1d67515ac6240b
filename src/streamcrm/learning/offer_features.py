"""What the offer ranker scores each (customer, candidate) pair on. Pure.

Every feature is computed from the customer's state and the population statistics as
they are at the moment (before the event being learned from is applied), so training
examples and served offers see the same thing. All are bounded (0 to about 1, counts
in log space), so one scale suits them; the ranker standardises them anyway.

- the customer's own history of the candidate: ``viewed``, ``view_rank`` (1 for the
  latest view, 1/2 for the one before, ...), ``view_recency`` (halves every hour since
  the last view), ``view_count`` (log(1 + views)), ``in_session`` (viewed within
  the last 30 minutes);
- neighbours: ``cooc`` (log summed co-occurrence with the last 5 viewed and the cart),
  ``cooc_last`` (with the last viewed SKU alone);
- taste: ``category_affinity`` (share of the customer's views in its category),
  ``same_category_last`` (the category of the last view), ``price_fit`` (1 at the mean
  price the customer views, falling with the log-distance from it);
- the population: ``popularity`` (log decayed popularity).

(No constant: the model's intercept is one, and a constant standardises to 0. Position
buckets, ``rank_0``, ``rank_1``, ... were tried and dropped: README.)

>>> from streamcrm.learning.candidates import CandidateStats
>>> from streamcrm.state import CustomerState, View
>>> s = CustomerState("c", 0.0, 0.0, recent_views=(View("a", "x", 10.0, 3600.0, 2),))
>>> row = features(s, ["a"], CandidateStats(), 3600.0, {}, {"a": 0.0})["a"]
>>> row["view_rank"], row["view_recency"], row["in_session"], round(row["view_count"], 3)
(1.0, 1.0, 1.0, 1.099)
"""

from __future__ import annotations

import math

from streamcrm.learning.candidates import CandidateStats
from streamcrm.state import CustomerState

HOUR = 3600.0
SESSION_S = 1800.0
UNKNOWN = ("unknown", 0.0)  # the catalogue entry of a SKU not seen with a category/price
FEATURES = (
    "viewed", "view_rank", "view_recency", "view_count", "in_session", "cooc", "cooc_last",
    "category_affinity", "same_category_last", "price_fit", "popularity",
)  # fmt: skip


def features(
    state: CustomerState,
    skus: list[str],
    stats: CandidateStats,
    now: float,
    cooc: dict[str, float],
    popularity: dict[str, float],
) -> dict[str, dict[str, float]]:
    """One row per candidate (``cooc``: summed strengths; ``popularity``: decayed, per SKU)."""
    views = state.recent_views
    history = {v.sku: (i, v) for i, v in reversed(list(enumerate(views)))}
    counts: dict[str, int] = {}
    for v in views:
        counts[v.category] = counts.get(v.category, 0) + 1
    n = len(views) or 1
    log_mean = sum(math.log(max(v.price, 0.01)) for v in views) / n if views else None
    last = views[0] if views else None
    # The list itself, read only (a read-only proxy's get looks up and calls dict.get each time).
    last_neighbours = stats.cooc.get(last.sku, {}) if last is not None else {}
    last_category = last.category if last is not None else None
    # Locals, and the per-customer parts hoisted: a row per candidate, ~60 an offer.
    catalog, log1p, pow_, log = stats.catalog.get, math.log1p, math.pow, math.log
    seen_at, cooc_of, near_last = history.get, cooc.get, last_neighbours.get
    share_of, popularity_of = counts.get, popularity.get
    rows = {}
    for sku in skus:
        category, price = catalog(sku, UNKNOWN)
        seen = seen_at(sku)
        if seen is None:
            viewed = rank = recency = count = session = 0.0
        else:
            i, v = seen
            age = max(now - v.ts, 0.0)
            viewed, rank, recency = 1.0, 1.0 / (1 + i), pow_(0.5, age / HOUR)
            count, session = log1p(v.views), 1.0 if age <= SESSION_S else 0.0
        fit = (
            1.0 / (1.0 + abs(log(price) - log_mean)) if log_mean is not None and price > 0 else 0.5
        )
        rows[sku] = {
            "viewed": viewed,
            "view_rank": rank,
            "view_recency": recency,
            "view_count": count,
            "in_session": session,
            "cooc": log1p(cooc_of(sku, 0.0)),
            "cooc_last": log1p(near_last(sku, 0.0)),
            "category_affinity": share_of(category, 0) / n,
            "same_category_last": 1.0 if category == last_category else 0.0,
            "price_fit": fit,
            "popularity": log1p(popularity_of(sku, 0.0)),
        }
    return rows
