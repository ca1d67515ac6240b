"""RFM quintiles against the live population, from streaming quantile estimates.

Cut points at 20/40/60/80% of recency (days since the last order), frequency (orders)
and monetary value (spend), each a River ``stats.Quantile`` (the P-square estimator:
constant memory, no nightly sort). Scores are 1-5, 5 best (for recency: most recent).

P-square estimates cannot be merged, so workers that share (:meth:`RFMScorer.share`)
take their cut points from a mergeable KLL sketch instead (:mod:`streamcrm.sharing.kll`):
its own values plus every other worker's, so all score against one population.

>>> scorer = RFMScorer(min_customers=5)
>>> for i in range(50):
...     scorer.learn_one(recency_days=i, frequency=1 + i % 7, monetary=10.0 * i)
>>> scorer.score_one(recency_days=1, frequency=7, monetary=480.0)
(5, 5, 5)
>>> segment((5, 5, 5)), segment((1, 1, 2)), segment((5, 1, 1))
('champions', 'lost', 'new')
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from river import stats

from streamcrm.learning.river_state import BadState, integer
from streamcrm.sharing.kll import KLL

CUTS = (0.2, 0.4, 0.6, 0.8)
DIMS = ("r", "f", "m")


class RFMScorer:
    def __init__(self, min_customers: int = 20) -> None:
        self.min_customers = min_customers
        self.seen = 0
        self._cuts = {dim: [stats.Quantile(q) for q in CUTS] for dim in DIMS}
        # Sharing on: the population's sketch, this worker's values since the last export,
        # and the cut points read from the sketch (re-read as it grows by ~1%).
        self._sketch: dict[str, KLL] | None = None
        self._outbox: dict[str, KLL] = {}
        self._sketch_cuts: dict[str, list[float | None]] = {}
        self._cuts_at = -1

    def share(self, k: int = 200) -> None:
        """Score against a mergeable sketch from now on (see the module's docstring)."""
        if self._sketch is None:
            self._sketch = {dim: KLL(k) for dim in DIMS}
            self._outbox = {dim: KLL(k) for dim in DIMS}

    def learn_one(self, *, recency_days: float, frequency: float, monetary: float) -> None:
        self.seen += 1
        for dim, value in (("r", recency_days), ("f", frequency), ("m", monetary)):
            for quantile in self._cuts[dim]:
                quantile.update(value)
            if self._sketch is not None:
                self._sketch[dim].update(value)
                self._outbox[dim].update(value)

    def export_delta(self) -> dict[str, Any] | None:
        """This worker's values since the last export, as sketches (plain data); None if
        there were none."""
        self.share()
        if not self._outbox["r"].n:
            return None
        k = self._outbox["r"].k
        out = {dim: self._outbox[dim].to_data() for dim in DIMS}
        self._outbox = {dim: KLL(k) for dim in DIMS}
        return out

    def merge_delta(self, delta: Any) -> None:
        """Another worker's :meth:`export_delta` (checked; :class:`BadState` if not)."""
        if delta is None:
            return
        if not isinstance(delta, dict):
            raise BadState("RFM delta: expected an object")
        sketches = {dim: KLL.from_data(delta.get(dim)) for dim in DIMS}
        self.share()
        assert self._sketch is not None
        n = integer(sketches["r"].n, "RFM values")
        for dim in DIMS:
            self._sketch[dim].merge(sketches[dim])
        self.seen += n

    def _cut_points(self, dim: str) -> list[float | None]:
        if self._sketch is None:
            return [q.get() for q in self._cuts[dim]]
        if self.seen - self._cuts_at > self.seen // 100:
            self._cuts_at = self.seen
            self._sketch_cuts = {d: self._sketch[d].cuts(CUTS) for d in DIMS}
        return self._sketch_cuts[dim]

    def _above(self, dim: str, value: float) -> int:
        return sum(1 for cut in self._cut_points(dim) if cut is not None and value > cut)

    def score_one(
        self, *, recency_days: float, frequency: float, monetary: float
    ) -> tuple[int, int, int] | None:
        """Quintile scores, or None until enough customers were seen for stable cut points."""
        if self.seen < self.min_customers:
            return None
        r = 5 - self._above("r", recency_days)
        return r, 1 + self._above("f", frequency), 1 + self._above("m", monetary)


# First match wins: (name, test on (r, f, m)).
SEGMENTS: tuple[tuple[str, Callable[[int, int, int], bool]], ...] = (
    ("champions", lambda r, f, m: r >= 4 and f >= 4),
    ("loyal", lambda r, f, m: r >= 3 and f >= 4),
    ("cant_lose", lambda r, f, m: r <= 1 and f >= 4 and m >= 4),
    ("at_risk", lambda r, f, m: r <= 2 and f >= 3),
    ("new", lambda r, f, m: r >= 4 and f == 1),
    ("potential_loyalist", lambda r, f, m: r >= 3 and f <= 3),
    ("hibernating", lambda r, f, m: r == 2),
    ("lost", lambda r, f, m: True),
)


def segment(rfm: tuple[int, int, int]) -> str:
    """The usual named segments from the R and F scores (M breaks the can't-lose tie)."""
    return next(name for name, test in SEGMENTS if test(*rfm))
