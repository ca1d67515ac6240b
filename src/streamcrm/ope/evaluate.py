"""Estimate target policies' CTR from a log: IPS, SNIPS and DR with a cross-fitted River
reward model, each with a percentile bootstrap 95% CI over impressions.

Cross-fitting: the rows are split in ``folds`` (seeded); each fold's reward predictions come
from a model fitted on the other folds, so DR never corrects a row with a model that saw it.
The bootstrap resamples impressions with the reward model held fixed (it is not refitted per
replicate), so DR's interval leaves out the reward model's own variance.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

import numpy as np

from streamcrm.ope.estimators import contributions, estimate_all
from streamcrm.ope.obd import Log, Policy
from streamcrm.ope.reward_model import RewardModel, features
from streamcrm.stats.intervals import Interval

QTable = dict[int, dict[int, float]]  # position -> item -> predicted click probability


def cross_fitted_q(
    log: Log, item_features: dict[int, dict[str, float]], pool: list[int], *, folds: int, seed: int
) -> tuple[list[int], list[QTable]]:
    """Each row's fold, and per fold the q table of a model fitted on the other folds."""
    rng = random.Random(seed)
    fold_of = [i % folds for i in range(len(log))]
    rng.shuffle(fold_of)
    positions = tuple(sorted(set(log.positions)))
    rows = [
        (features(p, a, item_features, positions), c)
        for a, p, c in zip(log.items, log.positions, log.clicks, strict=True)
    ]
    tables = []
    for k in range(folds):
        model = RewardModel(seed=seed + k)
        model.fit([row for row, f in zip(rows, fold_of, strict=True) if f != k])
        tables.append(
            {
                p: {a: model.predict(features(p, a, item_features, positions)) for a in pool}
                for p in positions
            }
        )
    return fold_of, tables


def evaluate_policies(
    log: Log,
    policies: Mapping[str, Policy],
    item_features: dict[int, dict[str, float]],
    *,
    resamples: int = 2000,
    seed: int = 0,
    folds: int = 2,
) -> tuple[dict[str, dict[str, Interval]], dict[str, float]]:
    """Per policy, each estimator's CI; and the reward model's held-out calibration."""
    pool = sorted(set(log.items) | set(item_features))
    fold_of, tables = cross_fitted_q(log, item_features, pool, folds=folds, seed=seed)
    calibration = reward_model_calibration(log, tables, fold_of)
    reward = np.asarray(log.clicks, dtype=float)
    p_log = np.asarray(log.propensities)
    out = {}
    for name, policy in policies.items():
        p_target, q_logged, q_target = [], [], []
        for a, p, f in zip(log.items, log.positions, fold_of, strict=True):
            dist = policy.get(p, {})
            q = tables[f][p]
            p_target.append(dist.get(a, 0.0))
            q_logged.append(q[a])
            q_target.append(sum(prob * q.get(item, 0.0) for item, prob in dist.items()))
        table = contributions(
            reward, p_log, np.asarray(p_target), np.asarray(q_logged), np.asarray(q_target)
        )
        out[name] = estimate_all(table, resamples=resamples, seed=seed)
    return out, calibration


def reward_model_calibration(
    log: Log, tables: list[QTable], fold_of: list[int]
) -> dict[str, float]:
    """Mean predicted vs observed CTR on the held-out folds (a mis-calibrated model shows here)."""
    predicted = [tables[f][p][a] for a, p, f in zip(log.items, log.positions, fold_of, strict=True)]
    return {"predicted_ctr": round(float(np.mean(predicted)), 6), "observed_ctr": round(log.ctr, 6)}
