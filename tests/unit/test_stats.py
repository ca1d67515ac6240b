"""Confidence intervals against published values, and the unit bootstrap's behaviour."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from streamcrm.stats import bootstrap_ci, cluster_sums, newcombe_diff, wilson

# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I,
# method 3 (Wilson score, no continuity correction).
WILSON_TABLE = [
    ((81, 263), (0.2553, 0.3662)),
    ((15, 148), (0.0624, 0.1605)),
    ((0, 20), (0.0000, 0.1611)),
    ((1, 29), (0.0061, 0.1718)),
]

# Newcombe (1998), "Interval estimation for the difference between independent
# proportions", Table II, method 10 (hybrid score), examples (a)-(h).
NEWCOMBE_TABLE = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((6, 7, 2, 7), (0.0582, 0.8062)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((0, 10, 0, 10), (-0.2775, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000)),
    ((10, 10, 0, 10), (0.6075, 1.0000)),
]


@pytest.mark.parametrize(("counts", "expected"), WILSON_TABLE)
def test_wilson_matches_newcombe_table(
    counts: tuple[int, int], expected: tuple[float, float]
) -> None:
    ci = wilson(*counts)
    assert (round(ci.low, 4), round(ci.high, 4)) == expected
    assert ci.estimate == counts[0] / counts[1]


@pytest.mark.parametrize(("counts", "expected"), NEWCOMBE_TABLE)
def test_newcombe_matches_published_table(
    counts: tuple[int, int, int, int], expected: tuple[float, float]
) -> None:
    ci = newcombe_diff(*counts)
    assert (round(ci.low, 4), round(ci.high, 4)) == expected


def test_wilson_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError, match="successes"):
        wilson(3, 2)
    with pytest.raises(ValueError, match="trials"):
        wilson(0, 0)


def test_wilson_narrows_at_a_higher_count_and_widens_at_a_higher_level() -> None:
    assert (
        wilson(30, 100).high - wilson(30, 100).low > wilson(300, 1000).high - wilson(300, 1000).low
    )
    assert wilson(30, 100, 0.99).low < wilson(30, 100, 0.95).low


def _bernoulli(n: int, p: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [1.0 if rng.random() < p else 0.0 for _ in range(n)]


def test_bootstrap_of_a_rate_agrees_with_wilson() -> None:
    ys = _bernoulli(2000, 0.3, seed=3)
    sums = np.column_stack([ys, np.ones(len(ys))])
    boot = bootstrap_ci(sums, lambda t: t[0] / t[1], resamples=3000, seed=5)
    exact = wilson(int(sum(ys)), len(ys))
    assert boot.estimate == pytest.approx(exact.estimate)
    assert boot.low == pytest.approx(exact.low, abs=0.005)
    assert boot.high == pytest.approx(exact.high, abs=0.005)


def test_bootstrap_is_reproducible_by_seed() -> None:
    sums = np.column_stack([_bernoulli(300, 0.5, seed=1), np.ones(300)])
    a = bootstrap_ci(sums, lambda t: t[0] / t[1], resamples=200, seed=9)
    b = bootstrap_ci(sums, lambda t: t[0] / t[1], resamples=200, seed=9)
    c = bootstrap_ci(sums, lambda t: t[0] / t[1], resamples=200, seed=10)
    assert a == b
    assert a != c


def test_clustered_bootstrap_widens_for_repeated_units() -> None:
    # Each of 400 units contributes 9 identical rows: the information is 400 rows' worth,
    # so resampling units must give an interval about sqrt(9) = 3 times the row bootstrap's.
    ys = _bernoulli(400, 0.4, seed=2)
    keys = [f"u{i}" for i in range(400) for _ in range(9)]
    rows = [[y, 1.0] for y in ys for _ in range(9)]

    def rate(t: np.ndarray) -> float:
        return float(t[0] / t[1])

    by_row = bootstrap_ci(np.asarray(rows), rate, resamples=2000, seed=4)
    by_unit = bootstrap_ci(cluster_sums(keys, rows), rate, resamples=2000, seed=4)
    ratio = (by_unit.high - by_unit.low) / (by_row.high - by_row.low)
    assert math.isclose(ratio, 3.0, rel_tol=0.15)
    assert by_unit.estimate == pytest.approx(by_row.estimate)


def test_cluster_sums_groups_in_first_seen_order() -> None:
    sums = cluster_sums(["b", "a", "b"], [[1.0], [2.0], [4.0]])
    assert sums.tolist() == [[5.0], [2.0]]
    with pytest.raises(ValueError, match="one row per key"):
        cluster_sums(["a"], [[1.0], [2.0]])


def test_bootstrap_drops_undefined_replicates() -> None:
    # A difference of two arm rates: some replicates of 3 units draw no treated unit.
    sums = np.array([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0]])

    def diff(t: np.ndarray) -> float:
        return float(t[0] / t[1] - t[2] / t[3])

    ci = bootstrap_ci(sums, diff, resamples=300, seed=0)
    assert ci.estimate == pytest.approx(0.5)
    assert math.isfinite(ci.low) and math.isfinite(ci.high)
