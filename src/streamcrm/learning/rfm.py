"""RFM quintiles against the live population, from streaming quantile estimates.

Cut points at 20/40/60/80% of recency (days since the last order), frequency (orders)
and monetary value (spend), each a River ``stats.Quantile`` (the P-square estimator:
constant memory, no nightly sort). Scores are 1-5, 5 best (for recency: most recent).

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

from river import stats

CUTS = (0.2, 0.4, 0.6, 0.8)


class RFMScorer:
    def __init__(self, min_customers: int = 20) -> None:
        self.min_customers = min_customers
        self.seen = 0
        self._cuts = {dim: [stats.Quantile(q) for q in CUTS] for dim in ("r", "f", "m")}

    def learn_one(self, *, recency_days: float, frequency: float, monetary: float) -> None:
        self.seen += 1
        for dim, value in (("r", recency_days), ("f", frequency), ("m", monetary)):
            for quantile in self._cuts[dim]:
                quantile.update(value)

    def _above(self, dim: str, value: float) -> int:
        return sum(1 for q in self._cuts[dim] if (cut := q.get()) is not None and value > cut)

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
