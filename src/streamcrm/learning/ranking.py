"""Offer ranking: an online River logistic regression over standardised (customer,
candidate) features.

It learns from what customers do next (:mod:`streamcrm.policies.offer_learning`): each
cart add or purchase is a ranking example over the candidates built before it, the SKU
added or bought the positive, sampled other candidates the negatives. ``pairwise``
learns the same logistic regression on differences (positive minus negative, and the
reverse), a RankNet/BPR-style objective; the default was chosen by measurement (README).

:meth:`OfferRanker.rank` orders the candidates; exploration and the logged propensities
are :mod:`streamcrm.policies.slot_sampling`'s.

>>> ranker = OfferRanker()
>>> [sku for sku, _ in ranker.rank({"a": {"cooc": 1.0}, "b": {"cooc": 0.0}})]
['a', 'b']
>>> ranker.learn_one({"cooc": 1.0}, True); ranker.version
'ranker-v2.1'
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from itertools import repeat
from operator import itemgetter, mul
from typing import Any

from river import compose, linear_model, optim, preprocessing
from river.utils.math import sigmoid

from streamcrm.learning.river_state import BadState, integer
from streamcrm.sharing.linear import LinearShare

ZEROS = repeat(0.0)  # the default weight of a feature the model has not seen
MAX_IPS_WEIGHT = 20.0  # inverse-propensity weights are capped (variance against bias)


class ExposureModel:
    """What customers do with offers they were *shown*: a River logistic regression of
    click (1) against dismiss (0) on the features the item was offered with, each example
    weighted by the inverse of its logged propensity (capped at :data:`MAX_IPS_WEIGHT`),
    so the items the logging policy favoured do not dominate it.

    Kept apart from the organic choices :class:`OfferRanker` learns from (their own
    weights, scaler and counts): an impression and an organic cart add are different
    labels, and a storefront that reports nothing leaves this model empty. It is
    reported, and it enters the served scores only when the ranker is built with
    ``exposure_blend`` > 0 (off by default: no log here has offer interactions to
    measure it on).

    >>> m = ExposureModel()
    >>> m.learn({"cooc": 1.0}, clicked=True, propensity=0.1)
    >>> m.clicks, m.labels, m.weighted
    (1, 1, 10.0)
    """

    def __init__(self) -> None:
        self.lr = linear_model.LogisticRegression(optimizer=optim.SGD(0.05))
        self.scaler = preprocessing.StandardScaler()
        self.model = compose.Pipeline(self.scaler, self.lr)
        self.labels = self.clicks = self.shown = 0
        self.weighted = 0.0  # the summed weights learned (the examples' effective mass)

    def learn(self, x: dict[str, float], *, clicked: bool, propensity: float) -> None:
        weight = min(1.0 / propensity, MAX_IPS_WEIGHT) if propensity > 0 else MAX_IPS_WEIGHT
        self.model.learn_one(x, clicked, w=weight)
        self.labels += 1
        self.clicks += int(clicked)
        self.weighted += weight

    def logit(self, x: dict[str, float]) -> float:
        """The model's log-odds of a click (the scaler's state untouched)."""
        means, variances, weight = self.scaler.means, self.scaler.vars, self.lr.weights.get
        total = self.lr.intercept
        for k, v in x.items():
            var = variances.get(k, 0.0)
            if var:
                total += weight(k, 0.0) * (v - means[k]) / var**0.5
        return float(total)

    def summary(self) -> dict[str, Any]:
        return {
            "labels": self.labels, "clicks": self.clicks, "shown": self.shown,
            "weighted": round(self.weighted, 4), "intercept": round(float(self.lr.intercept), 4),
            "weights": {k: round(float(v), 4) for k, v in self.lr.weights.items()},
        }  # fmt: skip


class OfferRanker:
    def __init__(
        self, epsilon: float = 0.1, *, scaled: bool = True, pairwise: bool = False,
        exposure_blend: float = 0.0,
    ) -> None:  # fmt: skip
        # Not read here (slot_sampling explores); kept because the processor and the
        # checkpoint still pass and copy it.
        self.epsilon = epsilon
        # Offer interactions (shown/clicked/dismissed) learn a model of their own; its
        # logit is added to the served scores x exposure_blend (0: reported, not used).
        self.exposure = ExposureModel()
        self.exposure_blend = exposure_blend
        self.scaled, self.pairwise = scaled, pairwise
        self.lr = linear_model.LogisticRegression(optimizer=optim.SGD(0.05))
        self.scaler = preprocessing.StandardScaler() if scaled else None
        self.model: Any = self.lr if self.scaler is None else compose.Pipeline(self.scaler, self.lr)
        self.labels = 0
        self._share: LinearShare | None = None  # set by the first export (sharing on)
        self._labels_exported = 0

    def export_delta(self) -> dict[str, Any] | None:
        """What this worker's own examples moved since the last export, as data
        (weights, intercept and scaler statistics; see :mod:`streamcrm.sharing.linear`);
        None if it learned nothing since."""
        if self.labels == self._labels_exported:
            return None
        if self._share is None:
            self._share = LinearShare()
        delta = self._share.export(self.lr, self.scaler)
        delta["labels"], self._labels_exported = self.labels - self._labels_exported, self.labels
        return delta

    def merge_delta(self, delta: Any) -> None:
        """Add another worker's :meth:`export_delta` (checked; :class:`BadState` if not)."""
        if delta is None:
            return
        if not isinstance(delta, dict):
            raise BadState("ranker delta: expected an object")
        labels = integer(delta.get("labels"), "ranker labels")
        if self._share is None:
            self._share = LinearShare()
        self._share.merge(self.lr, self.scaler, delta)
        self.labels += labels
        self._labels_exported += labels

    @property
    def version(self) -> str:
        return f"ranker-v2.{self.labels}"

    def learn_one(self, x: dict[str, float], clicked: bool) -> None:
        self.model.learn_one(x, clicked)
        self.labels += 1

    def learn_example(self, positive: dict[str, float], negatives: list[dict[str, float]]) -> None:
        """One choice: the customer took ``positive`` over the ``negatives``."""
        if not self.pairwise:
            self.learn_one(positive, True)
            for x in negatives:
                self.learn_one(x, False)
            return
        for x in negatives:
            diff = {k: v - x.get(k, 0.0) for k, v in positive.items()}
            self.learn_one(diff, True)
            self.learn_one({k: -v for k, v in diff.items()}, False)

    def weights(self) -> dict[str, float]:
        """The learned weight of each (standardised) feature."""
        return {k: round(float(v), 4) for k, v in self.lr.weights.items()}

    def rank(self, candidates: dict[str, dict[str, float]]) -> list[tuple[str, float]]:
        """(sku, score), best first. Ties keep the candidates' order, so an untrained model
        falls back on the candidate generator's own ranking.

        The model's own logit, computed here for the whole list: ``predict_proba_one`` per
        candidate was ~10% of the decision path's time (cProfile). It standardises exactly
        as River's StandardScaler does (0 where a feature's variance is 0), without
        touching its state. Pairwise scores are the same logit without the intercept.
        """
        weight = self.lr.weights.get
        intercept = 0.0 if self.pairwise else self.lr.intercept
        if self.scaler is None:
            # River's logit: sum() of weight x value in the features' order, plus the intercept.
            logits = [
                (sku, sum(map(mul, map(weight, x, ZEROS), x.values())) + intercept)
                for sku, x in candidates.items()
            ]
        else:
            logits = self._scaled_logits(candidates, intercept)
        scored = _sigmoids(logits)
        if self.exposure_blend and self.exposure.labels:
            blend, logit = self.exposure_blend, self.exposure.logit
            scored = [
                (sku, sigmoid(_logit(p) + blend * logit(candidates[sku]))) for sku, p in scored
            ]
        # Descending and stable (ties keep the candidates' order), without a key call per item.
        return sorted(scored, key=itemgetter(1), reverse=True)

    def rank_columns(
        self, skus: list[str], names: tuple[str, ...], columns: list[list[float]],
        *, lead: int = 0, nonzero: Iterable[int] = (),
    ) -> list[tuple[str, float]]:  # fmt: skip
        """:meth:`rank` of the rows ``{sku: dict(zip(names, row))}`` given as columns (one
        per name, a value per SKU; the SKUs distinct), with the same scores bit for bit:
        each row's products summed in the names' order, as :meth:`_scaled_logits` does.
        The first ``lead`` columns are 0.0 but in the rows ``nonzero`` (zero terms leave a
        sum as it is, so those columns are multiplied out only there).

        Column-wise: one pass per feature over the SKUs, no dict per row (scoring was ~10%
        of the decision core)."""
        if self.scaler is None or (self.exposure_blend and self.exposure.labels):
            rows = zip(*columns, strict=True)
            return self.rank(
                {
                    sku: dict(zip(names, row, strict=True))
                    for sku, row in zip(skus, rows, strict=True)
                }
            )
        intercept = 0.0 if self.pairwise else self.lr.intercept
        scale, shift = self._folded()
        total = sum([shift.get(k, 0.0) for k in names])
        weights = [scale.get(k, 0.0) for k in names]
        # Listcomps, not maps of operator functions: cheaper per item on CPython 3.11.
        products = [
            [w * x for x in column]
            for w, column in zip(weights[lead:], columns[lead:], strict=True)
        ]
        sums: list[float] = (
            list(map(sum, zip(*products, strict=True))) if products else [0.0] * len(skus)
        )
        for j in nonzero if lead else ():
            sums[j] = sum([w * column[j] for w, column in zip(weights, columns, strict=True)])
        logits = [(sku, s - total + intercept) for sku, s in zip(skus, sums, strict=True)]
        return sorted(_sigmoids(logits), key=itemgetter(1), reverse=True)

    def _folded(self) -> tuple[dict[str, float], dict[str, float]]:
        """Per feature of non-zero variance, w / std and w * mean / std."""
        assert self.scaler is not None
        weight, means = self.lr.weights.get, self.scaler.means
        scale, shift = {}, {}
        for k, variance in self.scaler.vars.items():
            if variance:
                w = weight(k, 0.0) / variance**0.5
                scale[k], shift[k] = w, w * means[k]
        return scale, shift

    def _scaled_logits(
        self, candidates: dict[str, dict[str, float]], intercept: float
    ) -> list[tuple[str, float]]:
        """w * (x - mean) / std = (w / std) * x - w * mean / std, folded once per list."""
        scale, shift = self._folded()
        # The weights in a row's key order and the summed shift depend only on the keys
        # (the same for every row features() builds): once per distinct key order.
        folded: dict[tuple[str, ...], tuple[list[float], float]] = {}
        logits = []
        for sku, x in candidates.items():
            keys = tuple(x)
            fold = folded.get(keys)
            if fold is None:
                weights = [scale.get(k, 0.0) for k in keys]
                fold = folded[keys] = (weights, sum([shift.get(k, 0.0) for k in keys]))
            weights, total = fold
            logits.append((sku, sum(map(mul, weights, x.values())) - total + intercept))
        return logits


def _sigmoids(logits: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """River's ``sigmoid`` (its 0 and 1 beyond +-30 included) over a list, without a
    Python call per item."""
    exp = math.exp
    return [(sku, 0 if z < -30 else 1 if z > 30 else 1 / (1 + exp(-z))) for sku, z in logits]


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))
