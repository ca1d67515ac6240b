"""Off-policy values of offer rankings from the exposure log: IPS, SNIPS and DR per slot,
summed over an offer's slots, with a customer-clustered bootstrap 95% CI.

A target policy maps a logged offer to a table ``pi[j, i]``: the probability it shows pool
SKU ``i`` in slot ``j``. Each shown slot is a logged impression (the position-wise, or
"independent", estimator): reward ``r_j`` = 1 if the customer's next cart add or order had
the SKU shown there, importance weight ``w_j = pi[j, a_j] / p_log_j`` with the logged
(exact) marginal. Per offer, over its slots:

- IPS   = mean over offers of sum_j w_j r_j           (the value: expected hits per offer)
- SNIPS = sum of sum_j w_j r_j / sum of mean_j w_j    (normalised by the mean slot weight)
- DR    = mean over offers of sum_j (sum_i pi[j, i] q[j, i] + w_j (r_j - q[j, a_j]))

``q`` is a River logistic reward model of a hit on the slot (one-hot) and the SKU's
exposure features, cross-fitted over offers (each offer's q from a model that never saw
it). The bootstrap resamples customers with q held fixed.

``replay_truth``: in a replay nobody saw the offers, so a SKU's reward does not depend on
what was shown, and every policy's value can be computed on the same offers from what the
customer added next: ``sum_j sum_i pi[j, i] [pool_i in targets]``. It is the check of the
estimators there, and means nothing on live logs (where offers change what is bought).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from streamcrm.ope.estimators import estimate_all
from streamcrm.ope.exposure import LoggedOffer
from streamcrm.ope.reward_model import RewardModel
from streamcrm.policies.slot_sampling import marginals
from streamcrm.stats.intervals import Interval

SlatePolicy = Callable[[LoggedOffer], np.ndarray]  # offer -> pi[slot, pool index]


def _ordered(offer: LoggedOffer, key: Callable[[int], tuple[float, ...]]) -> np.ndarray:
    """The deterministic policy showing the pool sorted by ``key`` (ties: the served order)."""
    k, n = len(offer.shown), len(offer.pool)
    order = sorted(range(n), key=lambda i: (*key(i), i))
    pi = np.zeros((k, n))
    pi[np.arange(k), order[:k]] = 1.0
    return pi


def logged(offer: LoggedOffer) -> np.ndarray:
    return np.asarray(marginals(offer.pool, len(offer.shown), offer.shares))


def greedy(offer: LoggedOffer) -> np.ndarray:
    return _ordered(offer, lambda i: ())


def model(offer: LoggedOffer) -> np.ndarray:
    return _ordered(offer, lambda i: (-offer.model[i],))


def recent(offer: LoggedOffer) -> np.ndarray:
    rank = offer.features.get("view_rank", [0.0] * len(offer.pool))
    return _ordered(offer, lambda i: (-rank[i],))


def popularity(offer: LoggedOffer) -> np.ndarray:
    pop = offer.features.get("popularity", [0.0] * len(offer.pool))
    return _ordered(offer, lambda i: (-pop[i],))


def uniform(offer: LoggedOffer) -> np.ndarray:
    return np.full((len(offer.shown), len(offer.pool)), 1.0 / len(offer.pool))


POLICIES: dict[str, SlatePolicy] = {
    "logged": logged,  # the logging policy itself (its value is also observed on-policy)
    "greedy": greedy,  # the served order without exploration
    "model": model,  # the learned ranker's order (what the gate serves once it is ahead)
    "recent": recent,  # recently viewed first, then the served order
    "popularity": popularity,  # decayed popularity
    "uniform": uniform,  # uniform random over the pool
}


def _design(offer: LoggedOffer, slots: int, names: Sequence[str]) -> np.ndarray:
    """Feature rows of every (slot, pool SKU): slot one-hot, then the SKU's features."""
    k, n = len(offer.shown), len(offer.pool)
    x = np.zeros((k, n, slots + len(names)))
    x[np.arange(k), :, np.arange(k)] = 1.0
    for c, name in enumerate(names):
        x[:, :, slots + c] = offer.features.get(name, [0.0] * n)
    return x


def _predict(fitted: RewardModel, columns: Sequence[str], x: np.ndarray) -> np.ndarray:
    """The fitted River pipeline's probabilities for a whole array (as River computes them,
    a standardised feature of variance 0 contributing 0)."""
    pipeline = fitted.model
    assert pipeline is not None
    scaler, lr = list(pipeline.steps.values())
    mean = np.array([scaler.means.get(c, 0.0) for c in columns])
    var = np.array([scaler.vars.get(c, 0.0) for c in columns])
    weight = np.array([lr.weights.get(c, 0.0) for c in columns])
    scale = np.divide(weight, np.sqrt(var), out=np.zeros_like(weight), where=var > 0)
    logit = (x - mean) @ scale + lr.intercept
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(logit, -50, 50))))


def cross_fitted_q(
    offers: Sequence[LoggedOffer], *, folds: int = 2, seed: int = 0
) -> tuple[list[np.ndarray], dict[str, float]]:
    """Each offer's q[j, i], from a model fitted on the other folds; and its calibration."""
    slots = max(len(o.shown) for o in offers)
    names = sorted({n for o in offers for n in o.features})
    columns = [f"slot={j + 1}" for j in range(slots)] + names
    designs = [_design(o, slots, names) for o in offers]
    fold_of = [i % folds for i in range(len(offers))]
    random.Random(seed).shuffle(fold_of)
    q: list[np.ndarray] = [np.zeros(0)] * len(offers)
    for k in range(folds):
        rows = []
        for o, x, f in zip(offers, designs, fold_of, strict=True):
            if f == k:
                continue
            for j, sku in enumerate(o.shown):
                row = x[j, o.pool.index(sku)]
                rows.append((dict(zip(columns, row.tolist(), strict=True)), int(sku in o.targets)))
        fitted = RewardModel(seed=seed + k)
        fitted.fit(rows)
        for i, (x, f) in enumerate(zip(designs, fold_of, strict=True)):
            if f == k:
                q[i] = _predict(fitted, columns, x)
    logged_q = [
        q[i][j, o.pool.index(s)] for i, o in enumerate(offers) for j, s in enumerate(o.shown)
    ]
    hits = [s in o.targets for o in offers for s in o.shown]
    calibration = {
        "predicted_hit_rate": round(float(np.mean(logged_q)), 6),
        "observed_hit_rate": round(float(np.mean(hits)), 6),
    }
    return q, calibration


def slate_table(
    offers: Sequence[LoggedOffer],
    policy: SlatePolicy,
    q: Sequence[np.ndarray],
    logging: Sequence[np.ndarray],
    *,
    by: str = "slot",
) -> tuple[np.ndarray, list[float], float]:
    """Per offer (sum w r, mean w, DR, 1); each offer's replay truth; the largest weight.

    ``by="slot"``: one impression per slot, weighted by the slot's marginals (no assumption
    on how the slot matters). ``by="item"``: one per shown SKU, weighted by its chance of
    being in the list at all (``sum_j pi[j, i]``): much smaller weights, unbiased when a
    SKU's reward does not depend on its slot (true in a replay, where nobody saw the list).
    """
    rows, truth, max_w = [], [], 0.0
    for offer, qo, log_pi in zip(offers, q, logging, strict=True):
        pi = policy(offer)
        shown = [offer.pool.index(s) for s in offer.shown]
        hit = np.array([float(s in offer.targets) for s in offer.pool])
        reward = hit[shown]
        if by == "slot":
            slots = np.arange(len(shown))
            w = pi[slots, shown] / np.asarray(offer.propensities)
            q_logged, direct = qo[slots, shown], float((pi * qo).sum())
        else:
            q_item = qo.mean(axis=0)
            w = pi.sum(axis=0)[shown] / log_pi.sum(axis=0)[shown]
            q_logged, direct = q_item[shown], float(pi.sum(axis=0) @ q_item)
        max_w = max(max_w, float(w.max()))
        dr = direct + float(w @ (reward - q_logged))
        rows.append([float(w @ reward), float(w.mean()), dr, 1.0])
        truth.append(float((pi @ hit).sum()))
    return np.asarray(rows), truth, max_w


def evaluate_slates(
    offers: Sequence[LoggedOffer],
    policies: Mapping[str, SlatePolicy] = POLICIES,
    *,
    by: str = "slot",
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[dict[str, dict[str, object]], dict[str, float]]:
    """Per policy: each estimator's CI, the replay truth, the largest weight."""
    if not offers:
        msg = (
            "no closed offers with an exposure in the log (was it written with offers.exposure on?)"
        )
        raise ValueError(msg)
    q, calibration = cross_fitted_q(offers, seed=seed)
    logging = [logged(o) for o in offers]
    units = [o.customer_id for o in offers]
    out: dict[str, dict[str, object]] = {}
    for name, policy in policies.items():
        table, truth, max_w = slate_table(offers, policy, q, logging, by=by)
        cis: dict[str, Interval] = estimate_all(table, units, resamples=resamples, seed=seed)
        out[name] = {"replay_truth": float(np.mean(truth)), "max_weight": max_w, **cis}
    return out, calibration


def on_policy(offers: Sequence[LoggedOffer]) -> float:
    """The logging policy's observed value: shown SKUs the customer added next, per offer."""
    return sum(sum(s in o.targets for s in o.shown) for o in offers) / len(offers)


def relative_error(estimate: float, actual: float) -> float | None:
    return round(abs(estimate - actual) / actual, 4) if actual and math.isfinite(estimate) else None
