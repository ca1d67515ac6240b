"""River models as plain data (numbers, strings, lists) and back, exactly. Pure.

Only the learned parameters travel; the model's configuration (learning rates, loss) is
rebuilt by our own constructors. Every reader checks types and sizes and raises
:class:`BadState` on anything else: a record is data, never code.

>>> from river import linear_model, stats
>>> model = linear_model.LogisticRegression()
>>> model.learn_one({"x": 2.0}, True)
>>> twin = linear_model.LogisticRegression()
>>> set_glm(twin, glm(model))
>>> dict(twin.weights) == dict(model.weights), twin.intercept == model.intercept
(True, True)
>>> q = stats.Quantile(0.5)
>>> for v in range(9):
...     q.update(float(v))
>>> q2 = stats.Quantile(0.5)
>>> set_quantile(q2, quantile(q))
>>> q2.get() == q.get()
True
"""

from __future__ import annotations

import functools
import math
import struct
from collections import Counter, defaultdict
from typing import Any

from river import metrics

MAX_FEATURES = 10_000


class BadState(ValueError):
    """A record that is not what this code writes; the message says what was wrong."""


def number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadState(f"{what}: expected a finite number, got {type(value).__name__}")
    return float(value)


def integer(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadState(f"{what}: expected a non-negative integer")
    return value


def text(value: Any, what: str, limit: int = 1000) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise BadState(f"{what}: expected a string of at most {limit} characters")
    return value


def pairs(value: Any, what: str, limit: int = MAX_FEATURES) -> list[list[Any]]:
    if not isinstance(value, list) or len(value) > limit:
        raise BadState(f"{what}: expected a list of at most {limit} entries")
    if not all(isinstance(p, list) for p in value):
        raise BadState(f"{what}: expected a list of lists")
    return value


# -- linear models (LogisticRegression with SGD): weights, intercept, optimizer step count


def glm(model: Any) -> dict[str, Any]:
    return {
        "weights": [[k, float(v)] for k, v in dict(model._weights).items()],
        "intercept": float(model.intercept),
        "steps": int(model.optimizer.n_iterations),
    }


def set_glm(model: Any, data: Any) -> None:
    if not isinstance(data, dict):
        raise BadState("linear model: expected an object")
    weights = [
        (text(k, "feature name"), number(v, "weight"))
        for k, v in (_pair(p, "weight") for p in pairs(data.get("weights"), "weights"))
    ]
    model.intercept = number(data.get("intercept"), "intercept")
    model.optimizer.n_iterations = integer(data.get("steps"), "optimizer steps")
    model._weights.clear()
    for k, v in weights:
        model._weights[k] = v


def _pair(p: list[Any], what: str) -> tuple[Any, Any]:
    if len(p) != 2:
        raise BadState(f"{what}: expected [name, value]")
    return p[0], p[1]


# -- StandardScaler: per-feature count, mean and variance


def scaler(model: Any) -> list[list[Any]]:
    return [
        [k, int(n), float(model.means[k]), float(model.vars[k])] for k, n in model.counts.items()
    ]


def set_scaler(model: Any, data: Any) -> None:
    rows = pairs(data, "scaler")
    counts: Counter[str] = Counter()
    means: defaultdict[str, float] = defaultdict(float)
    variances: defaultdict[str, float] = defaultdict(float)
    for row in rows:
        if len(row) != 4:
            raise BadState("scaler: expected [feature, count, mean, variance]")
        name = text(row[0], "feature name")
        counts[name] = integer(row[1], "count")
        means[name] = number(row[2], "mean")
        variances[name] = number(row[3], "variance")
    model.counts, model.means, model.vars = counts, means, variances


# -- ROCAUC: one confusion matrix per threshold (classes are booleans)


def roc_auc(metric: metrics.ROCAUC) -> dict[str, Any]:
    return {
        "thresholds": int(metric.n_thresholds),
        "cms": [
            {
                "cells": [
                    [bool(t), bool(p), float(w)]
                    for t, row in cm.data.items()
                    for p, w in row.items()
                ],
                "n": int(cm.n_samples),
            }
            for cm in metric.cms
        ],
    }


def set_roc_auc(metric: metrics.ROCAUC, data: Any) -> None:
    if not isinstance(data, dict) or data.get("thresholds") != metric.n_thresholds:
        raise BadState("ROC AUC: expected an object with this metric's threshold count")
    raw = data.get("cms")
    if not isinstance(raw, list) or len(raw) != metric.n_thresholds:
        raise BadState("ROC AUC: one confusion matrix per threshold expected")
    for cm, matrix in zip(metric.cms, raw, strict=True):
        if not isinstance(matrix, dict):
            raise BadState("ROC AUC: expected a confusion matrix object")
        cells = [_cell(c) for c in pairs(matrix.get("cells"), "ROC AUC cells", 4)]
        cm.data = defaultdict(functools.partial(defaultdict, float))
        cm.sum_row, cm.sum_col = defaultdict(float), defaultdict(float)
        cm.total_weight, cm._total_true_positives = 0, 0.0
        for y_true, y_pred, weight in cells:
            cm.update(y_true, y_pred, weight)
        cm.n_samples = integer(matrix.get("n"), "ROC AUC samples")


def _cell(cell: list[Any]) -> tuple[bool, bool, float]:
    if len(cell) != 3 or not all(isinstance(b, bool) for b in cell[:2]):
        raise BadState("ROC AUC: expected [bool, bool, weight] cells")
    return cell[0], cell[1], number(cell[2], "ROC AUC weight")


# -- Quantile (P-square, in Rust): its fixed-layout state as 21 floats and 2 small ints

_QUANTILE = struct.Struct("<21d2B")


def quantile(q: Any) -> list[float | int]:
    return list(_QUANTILE.unpack(q._quantile.__getstate__()))


def set_quantile(q: Any, data: Any) -> None:
    if not isinstance(data, list) or len(data) != 23:
        raise BadState("quantile: expected 23 numbers")
    floats = [number(v, "quantile state") for v in data[:21]]
    small = [integer(v, "quantile counter") for v in data[21:]]
    if small[0] > 5 or small[1] > 1 or floats[0] != q.q:
        raise BadState("quantile: counters out of range or another quantile")
    q._quantile.__setstate__(_QUANTILE.pack(*floats, *small))
    q._is_updated = small[0] > 0  # the Python wrapper's "seen anything" flag
