"""Seeded percentile bootstrap, resampling whole units (clusters), for statistics that are
a function of column sums.

Every estimator used here (a rate, a difference of rates, revenue per cart, IPS, SNIPS, DR)
is a function of a few sums over rows. So each unit's rows are first summed into one vector
(``cluster_sums``); a bootstrap replicate draws units with replacement, which is a
multinomial count per unit, and the replicate's totals are ``counts @ sums``. Resampling units
rather than rows keeps rows of one customer (or one cart) together, as the randomisation was.

>>> import numpy as np
>>> sums = cluster_sums(["a", "a", "b", "c"], [[1.0, 1.0], [0.0, 1.0], [1.0, 1.0], [0.0, 1.0]])
>>> sums.tolist()  # per unit: (successes, rows)
[[1.0, 2.0], [1.0, 1.0], [0.0, 1.0]]
>>> ci = bootstrap_ci(sums, lambda t: t[0] / t[1], resamples=500, seed=1)
>>> ci.estimate
0.5
>>> 0.0 <= ci.low <= ci.estimate <= ci.high <= 1.0
True
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import numpy as np

from streamcrm.stats.intervals import Interval

Statistic = Callable[[np.ndarray], float]


def cluster_sums(
    keys: Sequence[Hashable], rows: Sequence[Sequence[float]] | np.ndarray
) -> np.ndarray:
    """Sum ``rows`` by unit key, units in order of first appearance (one row per unit)."""
    values = np.asarray(rows, dtype=float)
    if values.ndim != 2 or len(values) != len(keys):
        msg = f"rows must be a 2-D table with one row per key ({len(keys)} keys)"
        raise ValueError(msg)
    index: dict[Hashable, int] = {}
    codes = np.fromiter((index.setdefault(k, len(index)) for k in keys), dtype=np.int64,
                        count=len(keys))  # fmt: skip
    out = np.zeros((len(index), values.shape[1]))
    np.add.at(out, codes, values)
    return out


def bootstrap_ci(
    sums: np.ndarray,
    statistic: Statistic,
    *,
    resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """Percentile interval of ``statistic(totals)`` over unit-resampled totals.

    ``sums`` has one row per unit (see ``cluster_sums``); ``statistic`` maps a vector of
    column totals to the figure. The estimate is the statistic of the full sample. Replicates
    where the statistic is undefined (NaN, e.g. an arm with no units drawn) are dropped.
    """
    cis = bootstrap_cis(sums, {"x": statistic}, resamples=resamples, seed=seed, level=level)
    return cis["x"]


def bootstrap_cis(
    sums: np.ndarray,
    statistics: dict[str, Statistic],
    *,
    resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Interval]:
    """Several statistics over the same replicates (as estimators of one log should be)."""
    if not 0.0 < level < 1.0:
        msg = f"confidence level must be between 0 and 1 (got {level})"
        raise ValueError(msg)
    replicates = bootstrap_totals(sums, resamples=resamples, seed=seed)
    full = sums.sum(axis=0)
    tail = (1.0 - level) / 2
    out = {}
    for name, statistic in statistics.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.array([statistic(t) for t in replicates])
        kept = values[np.isfinite(values)]
        if len(kept) == 0:
            msg = f"{name}: the statistic was undefined in every bootstrap replicate"
            raise ValueError(msg)
        low, high = np.quantile(kept, [tail, 1.0 - tail])
        out[name] = Interval(float(statistic(full)), float(low), float(high))
    return out


def bootstrap_totals(sums: np.ndarray, *, resamples: int, seed: int) -> np.ndarray:
    """``resamples`` x columns: the column totals of units drawn with replacement."""
    units = len(sums)
    if units < 2 or resamples < 1:
        msg = f"a bootstrap needs at least 2 units and 1 resample (got {units}, {resamples})"
        raise ValueError(msg)
    rng = np.random.default_rng(seed)
    out = np.empty((resamples, sums.shape[1]))
    # Chunks bound the memory of the draw and count matrices (chunk x units).
    chunk = max(1, min(resamples, 2_000_000 // units))
    done = 0
    while done < resamples:
        size = min(chunk, resamples - done)
        draws = rng.integers(0, units, size=(size, units))
        draws += np.arange(size)[:, None] * units  # one bincount for all replicates of the chunk
        counts = np.bincount(draws.ravel(), minlength=size * units).reshape(size, units)
        out[done : done + size] = counts @ sums
        done += size
    return out
