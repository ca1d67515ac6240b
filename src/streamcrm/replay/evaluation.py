"""Confidence intervals for a replay's rates: bootstrap over customers, exact ROC AUC. Pure.

A customer's evaluations are not independent (one shopper's habits shape all of theirs),
so intervals resample whole customers: each of ``rounds`` draws picks as many customers
as there are, with replacement, and recomputes the rate over their evaluations; the
interval is the 2.5th and 97.5th percentiles. Seeded: the same replay gives the same
interval.

>>> per = {"a": [["model_hit_at_5"], []], "b": [[], []]}
>>> lo, hi = offer_ci(per, "model_hit_at_5")
>>> 0.0 <= lo <= 0.25 <= hi <= 0.5
True
>>> exact_auc([0.9, 0.1, 0.8], [True, False, False])
1.0
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import rankdata

ROUNDS = 2000
SEED = 14


@functools.lru_cache(maxsize=2)
def _draws(customers: int, rounds: int, seed: int) -> np.ndarray:
    """The resampled customers; a replay's four offer intervals draw the same ones."""
    draws = np.random.default_rng(seed).integers(0, customers, size=(rounds, customers))
    draws.flags.writeable = False  # shared by every caller
    return draws


def _counts(per: Mapping[str, Sequence[Sequence[str]]], key: str) -> tuple[np.ndarray, np.ndarray]:
    n = np.array([len(evals) for evals in per.values()], dtype=float)
    hits = np.array([sum(key in e for e in evals) for evals in per.values()], dtype=float)
    return n, hits


def offer_ci(
    per: Mapping[str, Sequence[Sequence[str]]], key: str, rounds: int = ROUNDS, seed: int = SEED
) -> list[float] | None:
    """95% interval of the share of evaluations holding outcome ``key``."""
    if not per:
        return None
    n, hits = _counts(per, key)
    idx = _draws(len(n), rounds, seed)
    rates = hits[idx].sum(axis=1) / np.maximum(n[idx].sum(axis=1), 1.0)
    return [round(float(v), 4) for v in np.percentile(rates, [2.5, 97.5])]


def ratio_ci(
    per: Mapping[str, Sequence[Sequence[str]]], key: str, base: str,
    rounds: int = ROUNDS, seed: int = SEED,
) -> list[float] | None:  # fmt: skip
    """95% interval of hits(key) / hits(base) on the same resampled customers (paired)."""
    if not per:
        return None
    _, a = _counts(per, key)
    _, b = _counts(per, base)
    idx = _draws(len(a), rounds, seed)
    num, den = a[idx].sum(axis=1), b[idx].sum(axis=1)
    ratios = num[den > 0] / den[den > 0]
    if not len(ratios):
        return None
    return [round(float(v), 4) for v in np.percentile(ratios, [2.5, 97.5])]


def exact_auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """ROC AUC by ranks (ties count half): the Mann-Whitney U over positives x negatives."""
    y = np.asarray(labels, dtype=bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if not pos or not neg:
        return None
    ranks = rankdata(np.asarray(scores, dtype=float))  # ties get their mean rank
    return round(float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg)), 4)


def auc_ci(
    scores: Sequence[float], labels: Sequence[bool], groups: Sequence[str],
    rounds: int = 1000, seed: int = SEED,
) -> list[float] | None:  # fmt: skip
    """95% interval of the exact AUC, resampling customers (``groups``) with replacement."""
    names = sorted(set(groups))
    if not names:
        return None
    members: dict[str, list[int]] = {g: [] for g in names}
    for i, g in enumerate(groups):
        members[g].append(i)
    rng = np.random.default_rng(seed)
    s, y = np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool)
    out = []
    for _ in range(rounds):
        picks = rng.integers(0, len(names), size=len(names))
        idx = [i for p in picks for i in members[names[p]]]
        auc = exact_auc(s[idx].tolist(), y[idx].tolist())
        if auc is not None:
            out.append(auc)
    if not out:
        return None
    return [round(float(v), 4) for v in np.percentile(out, [2.5, 97.5])]
