"""Next-best-offer on a simulated clock: candidates, exclusions, throttling, rewards, learning."""

from __future__ import annotations

import random
from typing import Any

import orjson

from streamcrm.contract import validator
from streamcrm.decisions import CrmConfig
from streamcrm.events import format_ts
from streamcrm.ingest import BatchResult, Processor, Record
from streamcrm.learning.candidates import CandidateStats
from streamcrm.learning.ranking import OfferRanker
from streamcrm.policies.contact import ContactConfig
from streamcrm.policies.next_best_offer import OfferConfig, candidates
from streamcrm.state import Cart, CartLine, CustomerState, View

T0 = 1_790_000_000.0
TOPIC = {"product_viewed": "b", "cart_item_added": "c", "order_placed": "o", "consent_updated": "o"}
CONFIG = CrmConfig(contact=ContactConfig(holdout_share=0.0))


class Shop:
    def __init__(self) -> None:
        self.processor = Processor(
            {"b": "browse", "c": "cart", "o": "order"}, crm=CONFIG, clock="event"
        )
        self.table: dict[str, CustomerState] = {}
        self.offers: list[dict[str, Any]] = []
        self.outcomes: list[str] = []
        self.n = 0

    def send(self, customer: str, type_: str, ts: float, **body: Any) -> None:
        self.n += 1
        event = {"event_id": f"e{self.n}", "type": type_, "customer_id": customer, "ts": format_ts(ts),
                 "channel": "web", **body}  # fmt: skip
        result = self.processor.process([Record(TOPIC[type_], 0, self.n, customer.encode(), orjson.dumps(event))],
                                        self.table.get, now=ts)  # fmt: skip
        self._take(result)

    def view(self, customer: str, sku: str, ts: float, category: str = "shoes") -> None:
        self.send(customer, "product_viewed", ts, sku=sku, category=category, price=30.0)

    def cart(self, customer: str, sku: str, ts: float) -> None:
        self.send(
            customer,
            "cart_item_added",
            ts,
            cart_id=f"k-{customer}",
            sku=sku,
            qty=1,
            unit_price=30.0,
        )

    def _take(self, result: BatchResult) -> None:
        for cid, (_, state) in result.states.items():
            self.table[cid] = state
        self.offers += [o for _, o in result.offers]
        self.outcomes += list(result.outcomes.elements())


def teach_pairs(shop: Shop) -> None:
    """Many customers look at a then b: b becomes a's strong neighbour."""
    for i in range(30):
        shop.view(f"teacher{i}", "a", T0 + i)
        shop.view(f"teacher{i}", "b", T0 + i + 5)


def test_candidates_come_from_co_occurrence_and_exclude_cart_and_purchases() -> None:
    stats = CandidateStats()
    for i in range(10):
        stats.observe("a", "shoes", 30.0, ts=T0 + i, weight=1.0, recent=[])
        stats.observe("b", "shoes", 40.0, ts=T0 + i + 1, weight=1.0, recent=[("a", T0 + i)])
        stats.observe("c", "shoes", 20.0, ts=T0 + i + 2, weight=1.0, recent=[("a", T0 + i)])
    state = CustomerState("c1", T0, T0, recent_views=(View("a", "shoes", 30.0, T0 + 20),))
    pool, reasons = candidates(state, stats, T0 + 30, OfferConfig())
    assert {"a", "b", "c"} <= set(pool)
    assert reasons["b"] == "often viewed or bought with a" and pool["b"]["cooc"] > 0
    carted = CustomerState("c1", T0, T0, recent_views=state.recent_views,
                           cart=Cart("k", (CartLine("b", 1, 40.0),), 1, T0), recent_purchases=("c",))  # fmt: skip
    pool, _ = candidates(carted, stats, T0 + 30, OfferConfig())
    assert "b" not in pool and "c" not in pool  # in the cart, bought lately


def test_offers_are_valid_ranked_with_propensities_and_neighbours() -> None:
    shop = Shop()
    teach_pairs(shop)
    shop.view("c1", "a", T0 + 100)
    offer = shop.offers[-1]
    validator("next_best_offer").validate(offer)
    assert offer["customer_id"] == "c1" and offer["trigger"] == "product_viewed"
    skus = [item["sku"] for item in offer["items"]]
    assert "b" in skus and [i["rank"] for i in offer["items"]] == list(range(1, len(skus) + 1))
    assert all(0 < item["propensity"] <= 1 for item in offer["items"])


def test_offers_are_throttled_unless_the_cart_changes() -> None:
    shop = Shop()
    teach_pairs(shop)
    shop.view("c1", "a", T0 + 100)
    shop.view("c1", "b", T0 + 160)  # a minute later: throttled
    mine = [o for o in shop.offers if o["customer_id"] == "c1"]
    assert len(mine) == 1
    shop.cart("c1", "b", T0 + 200)  # the cart changed: a fresh offer
    shop.view("c1", "a", T0 + 900)  # ten minutes on: a fresh offer
    mine = [o for o in shop.offers if o["customer_id"] == "c1"]
    assert [o["trigger"] for o in mine] == ["product_viewed", "cart_changed", "product_viewed"]


def test_rewards_resolve_later_and_the_ranker_learns_from_choices() -> None:
    shop = Shop()
    teach_pairs(shop)
    ranker = shop.processor.learners.ranker
    shop.view("c1", "a", T0 + 100)
    learned_before = ranker.labels
    shown = [i["sku"] for i in shop.offers[-1]["items"]]
    shop.view("c1", shown[0], T0 + 130)  # a reaction within the click window
    assert shop.table["c1"].offer is not None and shop.table["c1"].offer.rewarded == (shown[0],)
    assert ranker.labels == learned_before  # a reaction to an offer is no label
    shop.view("zz", "x", T0 + 100 + 86_400 + 1)  # event time passes the buy window
    assert shop.table["c1"].offer.items == ()  # resolved
    assert "offer_resolved" in shop.outcomes and ranker.labels == learned_before
    shop.cart("c1", "b", T0 + 86_500)  # a choice among the candidates built before it
    assert ranker.labels > learned_before and "choice_learned" in shop.outcomes
    weights = ranker.weights()
    assert weights and any(abs(w) > 0 for w in weights.values())


def test_hit_rate_is_evaluated_on_the_next_cart_against_the_popularity_baseline() -> None:
    shop = Shop()
    teach_pairs(shop)
    shop.view("c1", "a", T0 + 100)
    shop.cart("c1", "b", T0 + 120)
    assert "nbo_evaluated" in shop.outcomes and "model_hit_at_5" in shop.outcomes


def test_no_offers_without_consent() -> None:
    shop = Shop()
    teach_pairs(shop)
    shop.send("c2", "consent_updated", T0 + 60, marketing=False)
    shop.view("c2", "a", T0 + 100)
    assert (
        not [o for o in shop.offers if o["customer_id"] == "c2"]
        and "offer_no_consent" in shop.outcomes
    )


def test_ranker_scores_the_list_exactly_as_river_scores_one() -> None:
    ranker = OfferRanker(epsilon=0.0)
    rng = random.Random(3)
    for _ in range(200):
        x = {"cooc": rng.random(), "popularity": rng.random() * 3, "bias": 1.0}
        ranker.learn_one(x, clicked=x["cooc"] > 0.6)
    pool = {f"s{i}": {"cooc": rng.random(), "popularity": rng.random(), "bias": 1.0,
                      "unseen": 1.0} for i in range(40)}  # fmt: skip
    ranked = ranker.rank(pool)

    def river(x: dict[str, float]) -> float:
        return float(ranker.model.predict_proba_one(x)[True])

    assert [sku for sku, _ in ranked] == sorted(pool, key=lambda s: -river(pool[s]))
    assert all(abs(score - river(pool[sku])) < 1e-12 for sku, score in ranked)
    assert ranked[0][1] > ranked[-1][1]  # it learned something to rank by
