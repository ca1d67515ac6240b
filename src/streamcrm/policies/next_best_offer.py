"""Next-best-offer: when to show a customer offers, which, and what their reaction teaches.

- **When**: on a product view, a cart change or an order, at most once per ``throttle_s``
  unless the context changed (a new cart version, an order).
- **Which**: candidates from what the stream taught (:mod:`streamcrm.learning.candidates`):
  what the customer looked at lately, neighbours of what they just looked at or carted, popular items in their
  favourite categories, what is trending; never what is in their cart, nor what was
  bought lately unless the buy-again rates clearly favour it
  (:mod:`streamcrm.learning.rebuy`). The ranker scores and explores
  (:mod:`streamcrm.learning.ranking`), or, while the gate finds it behind, the candidates' own order is served
  (:mod:`streamcrm.learning.offer_gate`).
- **Learning**: from what customers choose next (:mod:`streamcrm.policies.offer_learning`).
  An offered item viewed or carted within ``click_window_s``, or bought within
  ``buy_window_s``, is still marked ``rewarded``, but not learned from: nobody is known
  to have seen the offer.
- **Evaluation**: on the customer's next cart add or order after an offer, did the item
  fall in the offer's top 5 / top 10, and in every baseline's, taken at the same moment
  (:mod:`streamcrm.learning.baselines`)? (Prequential: scored before anything about it
  was learned.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from streamcrm.events import Event, format_ts
from streamcrm.evolve import evolve, fast_init
from streamcrm.learning import baselines, rebuy
from streamcrm.learning.candidates import CandidateStats
from streamcrm.learning.offer_features import FEATURES, OWN, Rows, features, table
from streamcrm.learning.offer_gate import OfferGate
from streamcrm.learning.ranking import OfferRanker
from streamcrm.policies import slot_sampling
from streamcrm.state import CustomerState, OfferState

WEIGHTS = {"product_viewed": 1.0, "cart_item_added": 3.0, "order_placed": 5.0}
FALLBACK_VERSION = "rule-recent-cooc-v1"  # offers served in the candidates' own order
REBUY = "rebuy"  # the offer's recent purchases (eval_lists), for the buy-again rates


@dataclass(frozen=True, slots=True)
class OfferConfig:
    items: int = 5
    throttle_s: float = 600.0
    click_window_s: float = 1800.0
    buy_window_s: float = 86_400.0
    max_candidates: int = 60
    learn: bool = True  # learn the ranker from cart adds and purchases (off: measure without)
    exploration: float = 0.1  # the last slot's share of random picks (slot_sampling)
    exploration_slots: float = 0.01  # each other slot's share of random picks
    exposure_pool: int = 20  # candidates explored over and published with each offer
    exposure: bool = True  # publish the pool, features and slot probabilities (offer.exposure)


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
    """Feed popularity and co-occurrence with one event, against the customer's history.

    Teaches ``stats`` in place (its one side effect); returns nothing."""
    weight = WEIGHTS.get(event.type)
    if weight is None:
        return
    recent = [(v.sku, v.ts) for v in before.recent_views[:5]] if before is not None else []
    for sku, category, price in interactions(event):
        stats.observe(sku, category, price, ts=event.ts, weight=weight, recent=recent)


@fast_init  # one per offer and per choice learned
@dataclass(frozen=True, slots=True)
class Pool:
    skus: list[str]  # best first in the fallback order
    strength: dict[str, float]  # summed co-occurrence with the seeds
    by_views: dict[str, float]  # the same from the last 5 viewed SKUs alone (baselines.cooc)
    popularity: dict[str, float]
    reasons: dict[str, str]


def candidate_pool(
    state: CustomerState, stats: CandidateStats, now: float, config: OfferConfig
) -> Pool:
    """The candidates in the fallback order, with what their features need.

    Written for speed (on the benchmark's traffic an offer gathers 79 SKUs on average, up
    to 214, and scores up to 60; this was 30% of the decision core's py-spy samples):
    reasons are formatted only for SKUs not yet seen, popularity is computed in one pass.
    """
    excluded = set(state.recent_purchases)
    recent = [v.sku for v in state.recent_views[:10]]
    in_cart = [line.sku for line in state.cart.lines] if state.cart is not None else []
    excluded.update(in_cart)
    strength: dict[str, float] = {}
    # Still interested? The strongest signal there is (the first reason given stays).
    reason = dict.fromkeys(recent, "you looked at this recently")
    strength_get, neighbour_items = strength.get, stats.neighbour_items
    by_views = strength
    for seeds in (recent[: baselines.SEEDS], in_cart):
        if seeds is in_cart and in_cart:  # the views' sums so far are the cooc baseline's
            by_views = dict(strength)
        for seed in seeds:
            why = f"often viewed or bought with {seed}"  # once per seed, not per neighbour
            for sku, weight in neighbour_items(seed):
                strength[sku] = strength_get(sku, 0.0) + weight
                if sku not in reason:
                    reason[sku] = why
    favourite = sorted({v.category for v in state.recent_views[:10]})
    for category in favourite:
        why = f"popular in {category}"
        for sku in stats.top_in(category, now)[:10]:
            if sku not in reason:
                reason[sku] = why
    for sku, _ in stats.top(20, now):
        if sku not in reason:
            reason[sku] = "trending now"
    viewed = [sku for sku in recent if sku not in excluded]
    skipped = excluded.union(viewed)
    others = [sku for sku in reason if sku not in skipped]
    popularity = stats.popularity_at(viewed + others, now)
    # The same order as sorting on (-strength, -popularity, sku), without a key call per
    # SKU: the tuples are built in one comprehension (SKUs are distinct, so no tie).
    keyed = sorted([(-strength_get(s, 0.0), -popularity[s], s) for s in others])
    pool = (viewed + [s for _, _, s in keyed])[: config.max_candidates]
    return Pool(pool, strength, by_views, popularity, reason)


def candidates(
    state: CustomerState, stats: CandidateStats, now: float, config: OfferConfig
) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """Candidate features (in the pool's order) and a short reason for each."""
    p = candidate_pool(state, stats, now, config)
    return features(state, p.skus, stats, now, p.strength, p.popularity), p.reasons


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


def excluded(state: CustomerState) -> frozenset[str]:
    """What no offer shows: the cart, and what was bought lately."""
    cart = state.cart.lines if state.cart is not None else ()
    return frozenset(state.recent_purchases).union(line.sku for line in cart)


def yardsticks(
    state: CustomerState,
    stats: CandidateStats,
    now: float,
    by_views: dict[str, float] | None = None,
) -> tuple[tuple[str, ...], tuple[tuple[str, tuple[str, ...]], ...]]:
    """The baselines' top 10 at this moment: (decayed popularity, the other rules);
    ``by_views``: the co-occurrence sums of :class:`Pool` (else summed here)."""
    out = excluded(state)
    cooc = (
        baselines.cooc(state, stats, out) if by_views is None else baselines.cooc_of(by_views, out)
    )
    lists = (
        ("recent", baselines.recent(state, out)),
        ("cooc", cooc),
        ("popular_exact", baselines.popular_exact(stats, out)),
    )
    return baselines.popular(stats, now, out), lists


def make_offer(
    state: CustomerState,
    event: Event,
    stats: CandidateStats,
    ranker: OfferRanker,
    config: OfferConfig,
    gate: OfferGate | None = None,
    *,
    with_exposure: bool = True,
) -> tuple[CustomerState, dict[str, Any] | None]:
    """Rank and pick; return the state holding the new offer, and the event (None if no
    candidates). The gate says whose order is served: the model's or the fallback's (the
    candidates' own order, recent views first); both are kept for the evaluation.
    ``with_exposure`` False: no exposure object even with ``config.exposure`` (nothing
    reads it)."""
    p = candidate_pool(state, stats, event.ts, config)
    if not p.skus:
        return state, None
    # Columns scored in one pass; a dict row only for what is shown or published.
    columns, viewed = table(state, p.skus, stats, event.ts, p.strength, p.popularity)
    pool, reasons = Rows(p.skus, columns), p.reasons
    offer_id = (
        "nbo-" + hashlib.sha256(f"{state.customer_id}|{event.event_id}".encode()).hexdigest()[:24]
    )
    learned = ranker.rank_columns(p.skus, FEATURES, columns, lead=OWN, nonzero=viewed)
    by_model = gate is None or gate.use_model
    # The fallback's scores only when it is served (its top 10 is the pool's first 10).
    scored = learned if by_model else [(sku, 1.0 / (1 + i)) for i, sku in enumerate(p.skus)]
    fallback_top = tuple(p.skus[:10])  # before buy-again may add to the pool
    cart = [line.sku for line in state.cart.lines] if state.cart is not None else []
    bought = rebuy.recent_purchases(state.recent_purchases, cart)
    publish = config.exposure and with_exposure
    model_of = dict(learned) if publish else {}  # the model's scores, for the exposure
    if gate is not None and bought:
        scored = _buy_again(state, event.ts, stats, ranker, gate, pool, reasons, scored, bought)
        if publish:
            model_of.update(ranker.rank({sku: pool[sku] for sku in bought if sku in pool}))
    # Only the head of the served order is read: the explored pool and the top 10.
    head = scored[: max(config.exposure_pool, 1, 10)]
    ranked = [sku for sku, _ in head]
    explored = ranked[: max(config.exposure_pool, 1)]
    shares = slot_sampling.slot_shares(
        min(config.items, len(explored)), last=config.exploration, others=config.exploration_slots
    )
    score_of = dict(head)
    shown = [
        (sku, score_of[sku], slot_sampling.marginal(explored, config.items, shares, j, sku))
        for j, sku in enumerate(slot_sampling.sample(explored, config.items, shares, offer_id))
    ]
    popular, lists = yardsticks(state, stats, event.ts, p.by_views)
    lists += (
        ("learned", tuple([sku for sku, _ in learned[:10]])),
        ("fallback", fallback_top),
    )
    if bought:  # what the buy-again rates learn from at the evaluation (not a baseline)
        lists += ((REBUY, bought),)
    offer = OfferState(
        offer_id=offer_id,
        at=event.ts,
        items=tuple([(sku, pool.sorted_items(sku)) for sku, _, _ in shown]),
        skus=tuple([sku for sku, _, _ in shown]),
        cart_version=state.cart.version if state.cart else -1,
        eval_model=tuple(ranked[:10]),
        eval_popular=popular,
        eval_lists=lists,
    )
    version = ranker.version if by_model else FALLBACK_VERSION
    body = offer_event(state.customer_id, event, offer_id, version, shown, reasons, config)
    if publish:
        body["exposure"] = exposure(explored, pool, score_of, model_of, shares)
    return evolve(state, offer=offer), body


def offer_event(
    customer_id: str, event: Event, offer_id: str, model_version: str,
    shown: list[tuple[str, float, float]], reasons: Mapping[str, str], config: OfferConfig,
) -> dict[str, Any]:  # fmt: skip
    """The ``next_best_offer`` event (schemas/next_best_offer.schema.json) of the items
    shown, as (sku, score, propensity) in rank order."""
    return {
        "event_id": offer_id,
        "type": "next_best_offer",
        "customer_id": customer_id,
        "ts": format_ts(event.ts),
        "offer_id": offer_id,
        "trigger": "cart_changed" if event.type.startswith("cart_") else event.type,
        "model_version": model_version,
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


def _buy_again(
    state: CustomerState, now: float, stats: CandidateStats, ranker: OfferRanker,
    gate: OfferGate, pool: Rows, reasons: dict[str, str], scored: list[tuple[str, float]],
    bought: tuple[str, ...],
) -> list[tuple[str, float]]:  # fmt: skip
    """The served order with recent purchases merged in where the buy-again rates say
    they beat the slot (:mod:`streamcrm.learning.rebuy`); each position keeps the served
    order's score. The features of those merged in join ``pool`` (and their reasons)."""
    base = [sku for sku, _ in scored]
    merged = gate.rebuy.merge(base, bought, baselines.DEPTH)
    if merged is base:
        return scored
    new = [sku for sku in merged if sku not in pool]
    pool.update(features(state, new, stats, now, {}, stats.popularity_at(new, now)))
    for sku in new:
        reasons[sku] = "you bought this before"
    scores = [score for _, score in scored]
    scores += [scores[-1]] * (len(merged) - len(scores))  # a short list grown by a purchase
    return list(zip(merged, scores, strict=False))


def exposure(
    explored: list[str],
    rows: Mapping[str, dict[str, float]],
    served: dict[str, float],
    model: dict[str, float],
    shares: tuple[float, ...],
) -> dict[str, Any]:
    """What off-policy evaluation needs of an offer (schemas/next_best_offer.schema.json):
    the pool the slots were drawn from in the served order, each candidate's features, its
    served and model scores, and each slot's exploration share."""
    return {
        "policy": slot_sampling.POLICY,
        "exploration": [round(e, 6) for e in shares],
        "features": list(FEATURES),
        "pool": [
            {
                "sku": sku,
                "score": round(served[sku], 6),
                "model": round(model[sku], 6),
                "x": [round(rows[sku].get(f, 0.0), 4) for f in FEATURES],
            }
            for sku in explored
        ],
    }


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


def reward_event(state: CustomerState, event: Event, config: OfferConfig) -> dict[str, Any] | None:
    """The offer's reward, published for off-policy evaluation (``offer_reward``, joined to
    the offer by ``offer_id``): the customer's first cart add or order while the offer is
    the latest and within ``buy_window_s``, its SKUs and the ranks of the shown ones in it.
    None otherwise (an offer replaced or expired without one has reward 0 in every slot)."""
    offer = state.offer
    if (
        not config.exposure
        or offer is None
        or offer.evaluated
        or event.type not in {"cart_item_added", "order_placed"}
        or not offer.at <= event.ts <= offer.at + config.buy_window_s
    ):
        return None
    targets = sorted({sku for sku, _, _ in interactions(event)})
    return {
        "event_id": "rwd-" + offer.offer_id.removeprefix("nbo-"),
        "type": "offer_reward",
        "customer_id": state.customer_id,
        "ts": format_ts(event.ts),
        "offer_id": offer.offer_id,
        "trigger": event.type,
        "skus": targets[:50],
        "hits": [rank for rank, sku in enumerate(offer.skus, 1) if sku in targets],
    }


def resolve(state: CustomerState, ranker: OfferRanker) -> CustomerState:
    """Close the offer's reward window; the offer stays for serving.

    Reactions to offers nobody is known to have seen (a replay; a storefront that does
    not report impressions) are coincidences, not labels: the ranker learns from choices
    (:mod:`streamcrm.policies.offer_learning`) instead, and ``rewarded`` stays as a count.
    """
    offer = state.offer
    if offer is None or not offer.items:
        return state
    return evolve(state, offer=evolve(offer, items=()))


def resolve_due(state: CustomerState, config: OfferConfig) -> float | None:
    offer = state.offer
    return offer.at + config.buy_window_s if offer is not None and offer.items else None


def evaluate(
    state: CustomerState, event: Event, stats: CandidateStats | None = None,
    gate: OfferGate | None = None,
) -> tuple[CustomerState, list[str]]:  # fmt: skip
    """Hit rates @5/@10 of the offer and of every baseline on the next cart add or buy.

    Each list was taken when the offer was made; ``stats`` (before this event is learned)
    says whether the system had seen the target at all (the upper bound of any ranker).
    Teaches ``gate`` (when given) the evaluated offer's outcome, in place.
    """
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
    if stats is not None and any(sku in stats.popularity for sku in skus):
        outcomes.append("nbo_target_seen")
    lists = (("model", offer.eval_model), ("popular", offer.eval_popular), *offer.eval_lists)
    for name, ranked in lists:
        for k in (5, 10) if name != REBUY else ():
            if skus & set(ranked[:k]):
                outcomes.append(f"{name}_hit_at_{k}")
    if skus & set(offer.skus):  # the list actually shown (exploration included)
        outcomes.append("shown_hit_at_5")
    orders = dict(offer.eval_lists)
    if gate is not None and "learned" in orders:  # the gate learns which order hits, here
        gate.update(
            model_hit=bool(skus & set(orders["learned"][: gate.k])),
            fallback_hit=bool(skus & set(orders["fallback"][: gate.k])),
        )
        gate.rebuy.update(base=orders["fallback"], rebuy=orders.get(REBUY, ()), targets=skus)
    return evolve(state, offer=evolve(offer, evaluated=True)), outcomes
