"""Every baseline is taken at the offer's moment and scored on the same next cart add or buy."""

from __future__ import annotations

from collections import Counter

from streamcrm.learning import baselines
from streamcrm.learning.candidates import CandidateStats
from streamcrm.profiles_summary import hit_rates
from streamcrm.replay.evaluation import exact_auc, offer_ci
from streamcrm.replay.runner import offer_summary
from streamcrm.state import Cart, CartLine, CustomerState, View
from tests.unit.test_next_best_offer import T0, Shop, teach_pairs


def test_rules_skip_the_cart_and_purchases_and_rank_as_documented() -> None:
    stats = CandidateStats()
    for i in range(5):
        stats.observe("a", "x", 1.0, ts=T0 + i, weight=1.0, recent=[])
        stats.observe("n", "x", 1.0, ts=T0 + i, weight=3.0, recent=[("a", T0 + i)])
    stats.observe("m", "x", 1.0, ts=T0 + 9, weight=1.0, recent=[("a", T0 + 8)])
    views = tuple(View(s, "x", 1.0, T0 + 20 - i) for i, s in enumerate(["c", "a", "b"]))
    state = CustomerState("c1", T0, T0, recent_views=views, recent_purchases=("b",),
                          cart=Cart("k", (CartLine("c", 1, 1.0),), 1, T0))  # fmt: skip
    out = frozenset({"b", "c"})
    assert baselines.recent(state, out) == ("a",)
    assert baselines.cooc(state, stats, out) == ("n", "m")  # by summed strength from "a"
    assert baselines.popular_exact(stats, out)[:2] == ("n", "a")  # 15 vs 5 interactions


def test_each_evaluation_scores_every_rule_on_the_same_target() -> None:
    shop = Shop()
    teach_pairs(shop)
    shop.view("c1", "a", T0 + 100)  # the offer is made here, every list taken with it
    lists = dict(shop.table["c1"].offer.eval_lists)
    assert lists["recent"] == ("a",) and lists["cooc"][0] == "b"
    shop.cart("c1", "a", T0 + 120)  # the target: the viewed SKU
    hits = Counter(shop.outcomes)
    assert hits["nbo_evaluated"] == 1 and hits["recent_hit_at_5"] == 1
    assert hits["cooc_hit_at_5"] == 0 and hits["nbo_target_seen"] == 1
    rates = hit_rates(hits)
    assert rates["baseline_hit_rate_at_5"]["recent"] == 1.0 == rates["baseline_hit_rate_at_5"]["best"]
    assert rates["best_baseline_at_5"] == "recent"
    assert rates["offer_vs_best_baseline"] == rates["offer_hit_rate_at_5"]


def test_intervals_cluster_by_customer() -> None:
    # One customer with 10 hits, nine with one miss each: the interval must be wide, as
    # whether that one customer is drawn decides nearly everything.
    per = {"heavy": [["model_hit_at_5"]] * 10, **{f"c{i}": [[]] for i in range(9)}}
    lo, hi = offer_ci(per, "model_hit_at_5") or [0.0, 0.0]
    assert lo < 0.3 and hi > 0.7
    summary = offer_summary(Counter({"nbo_evaluated": 19, "model_hit_at_5": 10}), per)
    assert summary["offer_hit_rate_at_5_ci"] == [lo, hi]


def test_exact_auc_counts_ties_half() -> None:
    assert exact_auc([0.5, 0.5], [True, False]) == 0.5
    assert exact_auc([0.2, 0.9, 0.4], [True, False, False]) == 0.0
