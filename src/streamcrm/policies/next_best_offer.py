"""Next-best-offer: when to show a customer offers, which, and what their reaction teaches.

- **When**: on a product view, a cart change or an order, at most once per ``throttle_s``
  unless the context changed (a new cart version, an order).
- **Which**: candidates from what the stream taught (:mod:`streamcrm.learning.candidates`):
  what the customer looked at lately, neighbours of what they just looked at or carted, popular items in their
  favourite categories, what is trending; never what is in their cart or was bought
  lately. The ranker scores and explores (:mod:`streamcrm.learning.ranking`).
- **Reward**: an offered item viewed or carted within ``click_window_s``, or bought within
  ``buy_window_s``, is a positive; when the buy window closes (or a new offer replaces
  this one) every shown item becomes a label and the ranker learns.
- **Evaluation**: on the customer's next cart add or order after an offer, did the item
  fall in the model's top 5 / top 10, and in the popularity baseline's, taken at the
  same moment? (Prequential: scored before anything about it was learned.)
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

from streamcrm.events import Event, format_ts
from streamcrm.evolve import evolve
from streamcrm.learning.candidates import CandidateStats
from streamcrm.learning.ranking import OfferRanker
from streamcrm.state import CustomerState, OfferState

WEIGHTS = {"product_viewed": 1.0, "cart_item_added": 3.0, "order_placed": 5.0}


@dataclass(frozen=True, slots=True)
class OfferConfig:
    items: int = 5
    throttle_s: float = 600.0
    click_window_s: float = 1800.0
    buy_window_s: float = 86_400.0
    max_candidates: int = 60


def interactions(event: Event) -> list[tuple[str, str | None, float | None]]:
    """(sku, category, price) an event touches, for learning and for rewards."""
    b = event.body
    if event.type == "product_viewed":
        return [(b["sku"], b["category"], float(b["price"]))]
    if event.type == "cart_item_added":
        return [(b["sku"], b.get("category"), float(b["unit_price"]))]
    if event.type == "order_placed":
        return [
            (line["sku"], line.get("category"), float(line["unit_price"])) for line in b["lines"]
        ]
    return []


def learn_population(before: CustomerState | None, event: Event, stats: CandidateStats) -> None:
    """Feed popularity and co-occurrence with one event, against the customer's history."""
    weight = WEIGHTS.get(event.type)
    if weight is None:
        return
    recent = [(v.sku, v.ts) for v in before.recent_views[:5]] if before is not None else []
    for sku, category, price in interactions(event):
        stats.observe(sku, category, price, ts=event.ts, weight=weight, recent=recent)


@dataclass(frozen=True, slots=True)
class Affinities:
    """What the customer's recent views say, computed once per offer, not per candidate."""

    category_share: dict[str, float]
    mean_price: float
    viewed: frozenset[str]

    @classmethod
    def of(cls, state: CustomerState) -> Affinities:
        views = state.recent_views
        counts: dict[str, int] = {}
        for v in views:
            counts[v.category] = counts.get(v.category, 0) + 1
        n = len(views) or 1
        return cls(
            {c: k / n for c, k in counts.items()},
            sum(v.price for v in views) / n if views else 0.0,
            frozenset(v.sku for v in views),
        )


UNKNOWN = ("unknown", 0.0)  # the catalogue entry of a SKU not seen with a category/price


def features(
    affinities: Affinities,
    skus: list[str],
    cooc: dict[str, float],
    popularity: dict[str, float],
    stats: CandidateStats,
) -> dict[str, dict[str, float]]:
    """What the ranker scores each candidate on (and learns from once it is labelled)."""
    catalog, share = stats.catalog.get, affinities.category_share.get
    mean_price, viewed, log1p = affinities.mean_price, affinities.viewed, math.log1p
    rows = {}
    for sku in skus:
        category, price = catalog(sku, UNKNOWN)
        rows[sku] = {
            "cooc": log1p(cooc.get(sku, 0.0)),
            "popularity": log1p(popularity[sku]),
            "category_affinity": share(category, 0.0),
            "price_ratio": min(price / mean_price, 5.0) if mean_price > 0 else 1.0,
            "viewed_before": 1.0 if sku in viewed else 0.0,
            "bias": 1.0,
        }
    return rows


def candidates(
    state: CustomerState, stats: CandidateStats, now: float, config: OfferConfig
) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """Candidate features and a short reason for each.

    Written for speed (on the benchmark's traffic an offer gathers 79 SKUs on average, up
    to 214, and scores up to 60; this was 30% of the decision core's py-spy samples):
    reasons are formatted only for SKUs not yet seen, popularity is computed in one pass.
    """
    excluded = set(state.recent_purchases)
    if state.cart is not None:
        excluded |= {line.sku for line in state.cart.lines}
    seeds = [v.sku for v in state.recent_views[:5]]
    if state.cart is not None:
        seeds += [line.sku for line in state.cart.lines]
    strength: dict[str, float] = {}
    reason: dict[str, str] = {}
    for view in state.recent_views[:10]:  # still interested? the strongest signal there is
        reason.setdefault(view.sku, "you looked at this recently")
    for seed in seeds:
        for sku, weight in stats.neighbours(seed).items():
            strength[sku] = strength.get(sku, 0.0) + weight
            if sku not in reason:
                reason[sku] = f"often viewed or bought with {seed}"
    favourite = sorted({v.category for v in state.recent_views[:10]})
    for category in favourite:
        for sku in stats.top_in(category, now)[:10]:
            if sku not in reason:
                reason[sku] = f"popular in {category}"
    for sku, _ in stats.top(20, now):
        reason.setdefault(sku, "trending now")
    viewed = [v.sku for v in state.recent_views[:10] if v.sku not in excluded]
    skipped = excluded.union(viewed)
    others = [sku for sku in reason if sku not in skipped]
    popularity = stats.popularity_at(viewed + others, now)
    strength_of = strength.get
    others.sort(key=lambda s: (-strength_of(s, 0.0), -popularity[s], s))
    pool = (viewed + others)[: config.max_candidates]
    return features(Affinities.of(state), pool, strength, popularity, stats), reason


def should_offer(state: CustomerState, event: Event, config: OfferConfig) -> bool:
    if event.type not in {"product_viewed", "cart_item_added", "cart_item_removed", "order_placed"}:
        return False
    last = state.offer
    if last is None:
        return True
    cart_version = state.cart.version if state.cart else -1
    changed = event.type == "order_placed" or (
        event.type.startswith("cart_") and cart_version != last.cart_version
    )
    return changed or event.ts - last.at >= config.throttle_s


def make_offer(
    state: CustomerState,
    event: Event,
    stats: CandidateStats,
    ranker: OfferRanker,
    config: OfferConfig,
) -> tuple[CustomerState, dict[str, Any] | None]:
    """Rank and pick; return the state holding the new offer, and the event (None if no candidates)."""
    pool, reasons = candidates(state, stats, event.ts, config)
    if not pool:
        return state, None
    offer_id = (
        "nbo-" + hashlib.sha256(f"{state.customer_id}|{event.event_id}".encode()).hexdigest()[:24]
    )
    scored = ranker.rank(pool)
    shown = ranker.choose(pool, k=config.items, seed=offer_id, ranked=scored)
    ranked = [sku for sku, _ in scored]
    popular = [sku for sku, _ in stats.top(30, event.ts) if sku not in state.recent_purchases][:10]
    offer = OfferState(
        offer_id=offer_id,
        at=event.ts,
        items=tuple((sku, tuple(sorted(pool[sku].items()))) for sku, _, _ in shown),
        skus=tuple(sku for sku, _, _ in shown),
        cart_version=state.cart.version if state.cart else -1,
        eval_model=tuple(ranked[:10]),
        eval_popular=tuple(popular),
    )
    trigger = "cart_changed" if event.type.startswith("cart_") else event.type
    body = {
        "event_id": offer_id,
        "type": "next_best_offer",
        "customer_id": state.customer_id,
        "ts": format_ts(event.ts),
        "offer_id": offer_id,
        "trigger": trigger,
        "model_version": ranker.version,
        "items": [
            {
                "sku": sku,
                "rank": i + 1,
                "score": round(score, 6),
                "propensity": round(propensity, 6),
                "reason": reasons[sku][:256],
            }
            for i, (sku, score, propensity) in enumerate(shown)
        ],
        "expires_at": format_ts(event.ts + config.buy_window_s),
    }
    return evolve(state, offer=offer), body


def reward(state: CustomerState, event: Event, config: OfferConfig) -> CustomerState:
    """Mark offered items the customer reacted to within the windows."""
    offer = state.offer
    if offer is None or event.ts < offer.at:
        return state
    age = event.ts - offer.at
    window = config.buy_window_s if event.type == "order_placed" else config.click_window_s
    if age > window or event.type not in WEIGHTS:
        return state
    shown = {sku for sku, _ in offer.items}
    hits = tuple(
        sku for sku, _, _ in interactions(event) if sku in shown and sku not in offer.rewarded
    )
    return evolve(state, offer=evolve(offer, rewarded=offer.rewarded + hits)) if hits else state


def resolve(state: CustomerState, ranker: OfferRanker) -> CustomerState:
    """Every shown item becomes a label; the ranker learns; the offer stays for serving."""
    offer = state.offer
    if offer is None or not offer.items:
        return state
    for sku, x in offer.items:
        ranker.learn_one(dict(x), sku in offer.rewarded)
    return evolve(state, offer=evolve(offer, items=()))


def resolve_due(state: CustomerState, config: OfferConfig) -> float | None:
    offer = state.offer
    return offer.at + config.buy_window_s if offer is not None and offer.items else None


def evaluate(state: CustomerState, event: Event) -> tuple[CustomerState, list[str]]:
    """Hit rates @5/@10 of the model and the popularity baseline on the next cart or buy."""
    offer = state.offer
    if (
        offer is None
        or offer.evaluated
        or event.type not in {"cart_item_added", "order_placed"}
        or event.ts < offer.at
    ):
        return state, []
    skus = {sku for sku, _, _ in interactions(event)}
    outcomes = ["nbo_evaluated"]
    for name, ranked in (("model", offer.eval_model), ("popular", offer.eval_popular)):
        for k in (5, 10):
            if skus & set(ranked[:k]):
                outcomes.append(f"{name}_hit_at_{k}")
    return evolve(state, offer=evolve(offer, evaluated=True)), outcomes
