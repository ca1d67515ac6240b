"""Closed-form confidence intervals for a proportion and a difference of two proportions.

Wilson's score interval (Wilson 1927) keeps its coverage near the nominal level for small
counts and rates near 0 or 1, where the Wald interval collapses; Newcombe's hybrid score
interval (Newcombe 1998, method 10) combines two Wilson intervals into one for ``p1 - p2``.
Both are what a readout of 35 holdout carts needs. Pure.

>>> wilson(81, 263).rounded(4)
Interval(estimate=0.308, low=0.2553, high=0.3662)
>>> newcombe_diff(56, 70, 48, 80).rounded(4)
Interval(estimate=0.2, low=0.0524, high=0.3339)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist


@dataclass(frozen=True, slots=True)
class Interval:
    estimate: float
    low: float
    high: float

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high

    def rounded(self, digits: int = 4) -> Interval:
        return Interval(
            round(self.estimate, digits), round(self.low, digits), round(self.high, digits)
        )

    def as_dict(self, digits: int = 6) -> dict[str, float]:
        return {
            "estimate": round(self.estimate, digits),
            "ci_low": round(self.low, digits),
            "ci_high": round(self.high, digits),
        }


def z_for(level: float) -> float:
    """The two-sided normal quantile: 1.959964 for 95%."""
    if not 0.0 < level < 1.0:
        msg = f"confidence level must be between 0 and 1 (got {level})"
        raise ValueError(msg)
    return NormalDist().inv_cdf(0.5 + level / 2)


def wilson(successes: int, trials: int, level: float = 0.95) -> Interval:
    """Wilson score interval for ``successes / trials`` (no continuity correction).

    >>> wilson(0, 20).rounded(4)
    Interval(estimate=0.0, low=0.0, high=0.1611)
    """
    if trials <= 0 or not 0 <= successes <= trials:
        msg = f"need 0 <= successes <= trials and trials > 0 (got {successes}/{trials})"
        raise ValueError(msg)
    z = z_for(level)
    p = successes / trials
    z2n = z * z / trials
    centre = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(p * (1 - p) / trials + z2n / (4 * trials))
    # Clamp rounding noise at the edges: 0/n has a lower bound of exactly 0.
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


def newcombe_diff(
    successes1: int, trials1: int, successes2: int, trials2: int, level: float = 0.95
) -> Interval:
    """Newcombe's hybrid score interval for ``p1 - p2`` (independent samples)."""
    a = wilson(successes1, trials1, level)
    b = wilson(successes2, trials2, level)
    d = a.estimate - b.estimate
    below = math.sqrt((a.estimate - a.low) ** 2 + (b.high - b.estimate) ** 2)
    above = math.sqrt((a.high - a.estimate) ** 2 + (b.estimate - b.low) ** 2)
    return Interval(d, d - below, d + above)
