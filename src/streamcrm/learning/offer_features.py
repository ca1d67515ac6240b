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
from collections.abc import Iterator, Mapping
from functools import cache
from itertools import repeat

from streamcrm.learning.candidates import CandidateStats
from streamcrm.state import CustomerState, View

HOUR = 3600.0
SESSION_S = 1800.0
UNKNOWN = ("unknown", 0.0)  # the catalogue entry of a SKU not seen with a category/price
OWN = 5  # the first five features: the customer's own history of the candidate
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
    columns = table(state, skus, stats, now, cooc, popularity)[0]
    return {
        sku: dict(zip(FEATURES, row, strict=True))
        for sku, row in zip(skus, zip(*columns, strict=True), strict=True)
    }


def table(
    state: CustomerState,
    skus: list[str],
    stats: CandidateStats,
    now: float,
    cooc: dict[str, float],
    popularity: dict[str, float],
) -> tuple[list[list[float]], list[int]]:
    """:func:`features` as columns, one per name of :data:`FEATURES` (in that order),
    each with a value per SKU of ``skus``; and the rows of the SKUs the customer viewed: the first
    :data:`OWN` columns are 0.0 in every other row.

    Columns, not a dict per candidate: an offer scores ~60 candidates and shows 5, so
    the rows were mostly built to be summed once (offer making was ~30% of the decision
    core, its rows the largest part); most columns are one ``map`` over the SKUs.
    """
    views, m = state.recent_views, len(skus)
    n = len(views) or 1
    log, log1p, zeros = math.log, math.log1p, repeat(0.0)
    log_mean = sum(log(max(v.price, 0.01)) for v in views) / n if views else None
    last = views[0] if views else None
    # The list itself, read only (a read-only proxy's get looks up and calls dict.get each time).
    near_last = stats.cooc.get(last.sku, {}) if last is not None else {}
    last_category = last.category if last is not None else None
    counts: dict[str, int] = {}
    for v in views:
        counts[v.category] = counts.get(v.category, 0) + 1
    share_of = counts.get
    # Listcomps where a value is arithmetic, maps where it is one C call per SKU: each
    # the cheaper on CPython 3.11 (callgrind).
    entries = list(map(stats.catalog.get, skus, repeat(UNKNOWN)))
    categories = [c for c, _ in entries]
    own, viewed = _own_history(views, skus, now)
    if log_mean is None:
        fit = [0.5] * m
    else:
        fit = [1.0 / (1.0 + abs(log(p) - log_mean)) if p > 0 else 0.5 for _, p in entries]
    columns = [
        *own,
        list(map(log1p, map(cooc.get, skus, zeros))),
        list(map(log1p, map(near_last.get, skus, zeros))),
        [share_of(c, 0) / n for c in categories],
        [1.0 if c == last_category else 0.0 for c in categories],
        fit,
        list(map(log1p, map(popularity.get, skus, zeros))),
    ]
    return columns, viewed


def _own_history(
    views: tuple[View, ...], skus: list[str], now: float
) -> tuple[list[list[float]], list[int]]:
    """The columns ``viewed`` .. ``in_session``: 0.0 but for the few SKUs the customer
    viewed (walked from the views, ~20, not from the candidates), and those rows."""
    m = len(skus)
    viewed, rank, recency, count, session = ([0.0] * m for _ in range(OWN))
    at = dict(zip(skus, range(m), strict=True))
    rows: list[int] = []
    for i, v in enumerate(views):
        j = at.get(v.sku)
        if j is None or viewed[j]:  # the first view of a SKU counts (views are distinct anyway)
            continue
        rows.append(j)
        age = max(now - v.ts, 0.0)
        viewed[j], rank[j], recency[j] = 1.0, 1.0 / (1 + i), math.pow(0.5, age / HOUR)
        count[j], session[j] = math.log1p(v.views), 1.0 if age <= SESSION_S else 0.0
    return [viewed, rank, recency, count, session], rows


@cache
def _by_name(names: tuple[str, ...]) -> tuple[int, ...]:
    """The positions of ``names`` in sorted order."""
    return tuple(sorted(range(len(names)), key=names.__getitem__))


class Rows(Mapping[str, dict[str, float]]):
    """The rows of a :func:`table` by SKU, each built when first read (an offer
    reads 5 to 25 of its ~60), and rows added whole (:meth:`update`).

    >>> rows = Rows(["a", "b"], [[1.0, 0.0]], names=("viewed",))
    >>> rows["b"], "c" in rows, list(rows)
    ({'viewed': 0.0}, False, ['a', 'b'])
    """

    __slots__ = ("_at", "_built", "_columns", "_names")

    def __init__(
        self, skus: list[str], table: list[list[float]], names: tuple[str, ...] = FEATURES
    ) -> None:
        self._at = dict(zip(skus, range(len(skus)), strict=True))
        self._columns, self._names = table, names
        self._built: dict[str, dict[str, float]] = {}

    def __getitem__(self, sku: str) -> dict[str, float]:
        row = self._built.get(sku)
        if row is None:
            j = self._at[sku]
            row = self._built[sku] = dict(
                zip(self._names, [c[j] for c in self._columns], strict=True)
            )
        return row

    def __contains__(self, sku: object) -> bool:
        return sku in self._at or sku in self._built

    def __iter__(self) -> Iterator[str]:
        yield from self._at
        yield from (sku for sku in self._built if sku not in self._at)

    def __len__(self) -> int:
        return len(self._at) + sum(1 for sku in self._built if sku not in self._at)

    def sorted_items(self, sku: str) -> tuple[tuple[str, float], ...]:
        """``tuple(sorted(self[sku].items()))`` (what an offer keeps of a shown item),
        without building the row."""
        j = self._at.get(sku)
        if j is None or sku in self._built:
            return tuple(sorted(self[sku].items()))
        names, columns = self._names, self._columns
        return tuple([(names[k], columns[k][j]) for k in _by_name(names)])

    def update(self, rows: dict[str, dict[str, float]]) -> None:
        """Add rows of SKUs the table does not hold."""
        self._built.update(rows)
