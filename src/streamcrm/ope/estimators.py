"""IPS, self-normalised IPS and doubly robust estimates of a target policy's mean reward.

Each logged row i has the reward ``r``, the logging policy's probability of the logged
action ``p_log`` and the target policy's probability of it ``p_target``, so the importance
weight is ``w = p_target / p_log``; DR also needs a reward model's prediction for the logged
action ``q_logged`` and its expectation under the target policy ``q_target`` (the sum over
actions of ``p_target(a) * q(a)``).

- IPS   = mean(w r)                                  unbiased, high variance
- SNIPS = sum(w r) / sum(w)                          slightly biased, bounded by the rewards
- DR    = mean(q_target + w (r - q_logged))          unbiased if either part is right

All three are ratios of column sums of ``contributions``, which is what lets the unit
bootstrap (``streamcrm.stats.bootstrap``) resample them with one matrix product.

>>> import numpy as np
>>> c = contributions(np.array([1.0, 0.0]), np.array([0.5, 0.5]), np.array([1.0, 0.0]))
>>> ips(c), snips(c)
(1.0, 1.0)
"""

from __future__ import annotations

import numpy as np

from streamcrm.stats.bootstrap import bootstrap_cis, cluster_sums
from streamcrm.stats.intervals import Interval

# Columns of the contributions table.
WR, W, DR, N = 0, 1, 2, 3


def contributions(
    reward: np.ndarray,
    p_log: np.ndarray,
    p_target: np.ndarray,
    q_logged: np.ndarray | None = None,
    q_target: np.ndarray | None = None,
) -> np.ndarray:
    """Per-row (w r, w, DR term, 1); without a reward model the DR term is IPS's."""
    reward = np.asarray(reward, dtype=float)
    p_log = np.asarray(p_log, dtype=float)
    if np.any(p_log <= 0):
        msg = "every logged propensity must be above 0 (a zero means the row cannot be reweighted)"
        raise ValueError(msg)
    w = np.asarray(p_target, dtype=float) / p_log
    if q_logged is None or q_target is None:
        dr = w * reward
    else:
        dr = np.asarray(q_target, dtype=float) + w * (reward - np.asarray(q_logged, dtype=float))
    return np.column_stack([w * reward, w, dr, np.ones_like(w)])


def ips(totals: np.ndarray) -> float:
    """Inverse propensity scoring, from column totals (or a per-row table)."""
    t = _totals(totals)
    return float(t[WR] / t[N])


def snips(totals: np.ndarray) -> float:
    t = _totals(totals)
    return float(t[WR] / t[W])


def dr(totals: np.ndarray) -> float:
    t = _totals(totals)
    return float(t[DR] / t[N])


ESTIMATORS = {"ips": ips, "snips": snips, "dr": dr}


def estimate_all(
    table: np.ndarray,
    units: list[str] | None = None,
    *,
    resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Interval]:
    """Each estimator with its percentile bootstrap CI, resampling units (rows by default)."""
    sums = table if units is None else cluster_sums(units, table)
    return bootstrap_cis(sums, dict(ESTIMATORS), resamples=resamples, seed=seed, level=level)


def _totals(table: np.ndarray) -> np.ndarray:
    return table if table.ndim == 1 else table.sum(axis=0)
