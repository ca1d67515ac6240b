"""What a River linear model (and its StandardScaler) learned since the last export, as
data, and how to add another worker's. Pure (mutates only the models given).

Workers share a model by summing deltas, not by averaging weights: each exports the
change of its weights since its last export (what its own SGD steps moved) and adds the
others' changes. The result is one model that took every worker's steps, a few steps
stale (asynchronous SGD with bounded staleness): with N workers it learns from all the
examples at the single model's learning rate. Averaging would divide every step by N
(averaging N models that each saw 1/N of the data gives one model that saw 1/N of the
steps). Scaler statistics merge exactly (Chan et al.'s parallel mean and variance).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from streamcrm.learning.river_state import BadState, integer, number, pairs, text

Stats = tuple[int, float, float]  # count, mean, M2 (the sum of squared deviations)


def combine(a: Stats, b: Stats) -> Stats:
    na, ma, sa = a
    nb, mb, sb = b
    n = na + nb
    if n == 0:
        return 0, 0.0, 0.0
    d = mb - ma
    return n, ma + d * nb / n, sa + sb + d * d * na * nb / n


def subtract(total: Stats, a: Stats) -> Stats:
    """``b`` such that ``combine(a, b) == total`` (what was added since ``a``)."""
    n, m, s = total
    na, ma, sa = a
    nb = n - na
    if nb <= 0:
        return 0, 0.0, 0.0
    mb = (n * m - na * ma) / nb
    d = mb - ma
    return nb, mb, max(s - sa - d * d * na * nb / n, 0.0)


def _scaler_stats(scaler: Any) -> dict[str, Stats]:
    return {k: (int(n), float(scaler.means[k]), float(scaler.vars[k]) * n)
            for k, n in scaler.counts.items()}  # fmt: skip


def _set_scaler(scaler: Any, key: str, stats: Stats) -> None:
    n, m, s = stats
    scaler.counts[key] = n
    scaler.means[key] = m
    scaler.vars[key] = s / n if n else 0.0


@dataclass(slots=True)
class LinearShare:
    """The baseline a model is compared with at export: its state after the last export
    plus every delta merged since (so an export carries only this worker's own steps)."""

    weights: dict[str, float] = field(default_factory=dict)
    intercept: float = 0.0
    scaler: dict[str, Stats] = field(default_factory=dict)

    def export(self, lr: Any, scaler: Any | None) -> dict[str, Any]:
        now_w = {k: float(v) for k, v in dict(lr._weights).items()}
        dw = [[k, v - self.weights.get(k, 0.0)] for k, v in now_w.items()
              if v != self.weights.get(k, 0.0)]  # fmt: skip
        out: dict[str, Any] = {"w": dw, "b": float(lr.intercept) - self.intercept}
        self.weights, self.intercept = now_w, float(lr.intercept)
        if scaler is not None:
            now_s = _scaler_stats(scaler)
            ds = []
            for k, stats in now_s.items():
                n, m, s = subtract(stats, self.scaler.get(k, (0, 0.0, 0.0)))
                if n:
                    ds.append([k, n, m, s])
            out["s"] = ds
            self.scaler = now_s
        return out

    def merge(self, lr: Any, scaler: Any | None, delta: Any) -> None:
        """Add another worker's export (checked: :class:`BadState` on anything else)."""
        if not isinstance(delta, dict):
            raise BadState("model delta: expected an object")
        dw = [(text(k, "feature"), number(v, "weight step")) for k, v in _rows(delta.get("w"), 2)]
        ds = [
            (text(r[0], "feature"), (integer(r[1], "count"), number(r[2], "mean"),
                                     number(r[3], "M2")))
            for r in _rows(delta.get("s", []), 4)
        ]  # fmt: skip
        db = number(delta.get("b"), "intercept step")
        weights = lr._weights
        for k, v in dw:
            weights[k] = weights.get(k, 0.0) + v
            self.weights[k] = self.weights.get(k, 0.0) + v
        lr.intercept += db
        self.intercept += db
        if scaler is None:
            return
        mine = _scaler_stats(scaler)
        for k, stats in ds:
            _set_scaler(scaler, k, combine(mine.get(k, (0, 0.0, 0.0)), stats))
            self.scaler[k] = combine(self.scaler.get(k, (0, 0.0, 0.0)), stats)


def _rows(value: Any, width: int) -> Iterable[list[Any]]:
    rows = pairs(value, "model delta")
    if any(len(r) != width for r in rows):
        raise BadState(f"model delta: expected rows of {width}")
    return rows
