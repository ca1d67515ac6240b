"""The offers' slot sampler: its per-slot probabilities are exact (against an exhaustive
enumeration of what it can draw, and against its own draws), and every slot is logged."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streamcrm.events import Event, parse_ts
from streamcrm.learning.candidates import CandidateStats
from streamcrm.learning.ranking import OfferRanker
from streamcrm.policies import next_best_offer as nbo
from streamcrm.policies.slot_sampling import marginal, marginals, sample, slot_shares
from streamcrm.state import CustomerState, View


def enumerated(pool: list[str], k: int, shares: tuple[float, ...]) -> dict[tuple[int, str], float]:
    """P(slot j shows sku), by enumerating every explore pattern and every ordered draw."""
    m = min(k, len(pool))
    out: Counter[tuple[int, str]] = Counter()
    for pattern in itertools.product([False, True], repeat=m):
        p = 1.0
        for j, e in enumerate(pattern):
            p *= shares[j] if e else 1.0 - shares[j]
        if p == 0:
            continue
        kept = {pool[j] for j in range(m) if not pattern[j]}
        avail = [s for s in pool if s not in kept]
        draws = list(itertools.permutations(avail, sum(pattern)))
        for draw in draws:
            it = iter(draw)
            for j in range(m):
                out[(j, next(it) if pattern[j] else pool[j])] += p / len(draws)
    return out


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 6),
    k=st.integers(1, 4),
    shares=st.lists(st.sampled_from([0.0, 0.05, 0.3, 1.0]), min_size=4, max_size=4),
)
def test_marginals_are_exact(n: int, k: int, shares: list[float]) -> None:
    pool = [f"s{i}" for i in range(n)]
    exact = enumerated(pool, k, tuple(shares))
    table = marginals(pool, k, shares)
    for j, row in enumerate(table):
        assert abs(sum(row) - 1.0) < 1e-9  # each slot shows exactly one item
        for i, sku in enumerate(pool):
            assert abs(row[i] - exact[(j, sku)]) < 1e-9, (j, sku)


def test_draws_follow_the_marginals() -> None:
    pool = [f"s{i}" for i in range(7)]
    shares = slot_shares(4, last=0.4, others=0.2)
    counts: Counter[tuple[int, str]] = Counter()
    draws = 20_000
    for t in range(draws):
        shown = sample(pool, 4, shares, f"offer-{t}")
        assert len(set(shown)) == 4 and set(shown) <= set(pool)
        counts.update(enumerate(shown))
    worst = max(
        abs(counts[(j, sku)] / draws - marginal(pool, 4, shares, j, sku))
        for j in range(4)
        for sku in pool
    )
    assert worst < 0.01


def test_no_exploration_is_the_greedy_list_with_probability_one() -> None:
    pool = ["a", "b", "c"]
    shares = slot_shares(2, last=0.0, others=0.0)
    assert sample(pool, 2, shares, "x") == ["a", "b"]
    assert marginals(pool, 2, shares) == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]


def _offer() -> tuple[CustomerState, dict[str, Any], nbo.OfferConfig]:
    stats = CandidateStats()
    views = tuple(View(f"v{i}", "cat", 10.0, 1000.0 - i, 1) for i in range(8))
    state = CustomerState("c1", 0.0, 1000.0, recent_views=views)
    for i in range(8):
        stats.observe(f"v{i}", "cat", 10.0, ts=900.0, weight=1.0, recent=[])
    event = Event(
        "e1", "product_viewed", "c1", 1000.0, "web", None,
        {"sku": "v0", "category": "cat", "price": 10.0},
    )  # fmt: skip
    config = nbo.OfferConfig(exploration=0.3, exploration_slots=0.2, exposure_pool=6)
    new, body = nbo.make_offer(state, event, stats, OfferRanker(), config)
    assert body is not None
    return new, body, config


def test_every_slot_logs_its_probability_and_the_pool_is_published() -> None:
    _, body, config = _offer()
    exposure = body["exposure"]
    pool = [c["sku"] for c in exposure["pool"]]
    assert len(pool) == 6 and len(exposure["pool"][0]["x"]) == len(exposure["features"])
    assert exposure["exploration"] == [0.2, 0.2, 0.2, 0.2, 0.3]
    for j, item in enumerate(body["items"]):
        expected = marginal(pool, config.items, tuple(exposure["exploration"]), j, item["sku"])
        assert item["propensity"] == round(expected, 6) < 1.0


def test_the_reward_is_the_next_cart_add_within_the_window() -> None:
    state, body, config = _offer()
    shown = [i["sku"] for i in body["items"]]
    add = Event(
        "e2", "cart_item_added", "c1", 1060.0, "web", None,
        {"sku": shown[1], "category": "cat", "unit_price": 10.0, "qty": 1},
    )  # fmt: skip
    reward = nbo.reward_event(state, add, config)
    assert reward is not None and reward["offer_id"] == body["offer_id"]
    assert reward["hits"] == [2] and reward["skus"] == [shown[1]]
    assert parse_ts(reward["ts"]) == 1060.0
    late = Event(
        "e3", "cart_item_added", "c1", 1000.0 + config.buy_window_s + 1, "web", None, add.body
    )
    assert nbo.reward_event(state, late, config) is None
    evaluated, _ = nbo.evaluate(state, add)
    assert nbo.reward_event(evaluated, add, config) is None  # one reward per offer
