"""Candidate statistics: the ranked index gives what a full sort of the catalogue gave."""

from __future__ import annotations

import math
import random

from streamcrm.learning.candidates import CandidateStats


def reference_order(stats: CandidateStats, now: float) -> list[str]:
    """The definition: every tracked SKU by decayed popularity, earliest seen among equals."""
    decayed = stats.popularity_at(stats.popularity, now)
    return sorted(stats.popularity, key=lambda sku: -decayed[sku])


def drive(stats: CandidateStats, rng: random.Random, n: int, skus: int, ts: float = 1.7e9) -> float:
    recent: list[tuple[str, float]] = []
    for _ in range(n):
        ts += rng.choice((0.0, 1.0, 7.0, 60.0))  # ties in time are common in real logs
        sku = f"s{min(int(rng.paretovariate(1.1)), skus)}"
        stats.observe(sku, f"c{hash(sku) % 7}", 9.5, ts=ts, weight=rng.choice((1.0, 3.0, 5.0)),
                      recent=recent[-5:])  # fmt: skip
        recent.append((sku, ts))
    return ts


def test_ranked_matches_a_full_sort_and_eviction_keeps_the_most_popular() -> None:
    for seed in range(5):
        rng = random.Random(seed)
        stats = CandidateStats(half_life_s=997.3, max_skus=50, max_neighbours=3)
        ts = 1_700_000_000.0
        for _ in range(40):
            ts = drive(stats, rng, 50, 5_000, ts)
            assert stats.ranked(10**6) == reference_order(stats, ts)
            assert stats.ranked(7) == reference_order(stats, ts)[:7]
        assert len(stats.popularity) == 50


def test_memory_stays_bounded_whatever_the_catalogue() -> None:
    stats = CandidateStats(max_skus=100, max_neighbours=4)
    drive(stats, random.Random(3), 20_000, 10**6)
    assert len(stats.popularity) == len(stats.catalog) == 100
    assert len(stats.cooc) <= 100
    assert set(stats.cooc) <= set(stats.popularity)
    assert all(len(n) <= 8 for n in stats.cooc.values())


def test_top_lists_follow_popularity() -> None:
    stats = CandidateStats(refresh_every=1)
    for i, sku in enumerate(["a", "b", "b", "c", "c", "c"]):
        stats.observe(sku, "x" if sku != "c" else "y", 1.0, ts=float(i), weight=1.0, recent=[])
    assert [sku for sku, _ in stats.top(3, now=5.0)] == ["c", "b", "a"]
    assert stats.top_in("x", now=5.0) == ["b", "a"]
    score = dict(stats.top(3, now=5.0))["a"]
    assert math.isclose(score, 0.5 ** (5.0 / stats.half_life_s))
