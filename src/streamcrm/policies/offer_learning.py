"""Learning offers from what customers do next: each cart add and purchase is a choice.

At a cart add or an order, the candidates the system would have offered are built from
the customer's state *before* the event is applied (and the population statistics before
it is learned): the SKU the customer added or bought is the positive, up to
``negatives`` other candidates (drawn with a generator seeded by the event id, so a
replay learns exactly as live did) are the negatives. Nothing here needs the customer
to have seen an offer, so it learns the same in a replay and live. A target the
candidates did not hold teaches nothing about ranking them and is skipped.

The gate (:mod:`streamcrm.learning.offer_gate`) is not fed here but at the offers' own
evaluation moments (:func:`streamcrm.policies.next_best_offer.evaluate`): an offer is
shown from when it is made until the next one, so what counts is how its order fared on
the customer's next choice, which is what the replay reports. (Fed here, on the pool
just before the choice, the gate opened for a model that was behind at the offers'
moments on the Taobao slice.)

Offer interactions (:func:`learn_interaction`, the ``offer_interaction`` input on the
browse topic) are the other kind of label: what a customer did with an item they were
shown. They teach the ranker's :class:`~streamcrm.learning.ranking.ExposureModel`, kept
apart from the choices: a click is a positive, a dismissal a negative, each weighted by
the inverse of the logged propensity, on the features the item was offered with (kept in
the offer until its reward window closes). An impression (``shown``) is counted, not
learned: on its own it says neither (a storefront that wants unclicked impressions
learned as negatives sends ``dismissed`` when the item leaves the screen).
"""

from __future__ import annotations

import hashlib
import random

from streamcrm.events import Event
from streamcrm.learning.candidates import CandidateStats
from streamcrm.learning.offer_features import features
from streamcrm.learning.ranking import OfferRanker
from streamcrm.policies.next_best_offer import OfferConfig, candidate_pool, interactions
from streamcrm.state import CustomerState

CHOICES = {"cart_item_added", "order_placed"}
NEGATIVES = 8
INTERACTION = "offer_interaction"
# What an offer_interaction can come to (declared by decisions/offers.py).
INTERACTION_OUTCOMES = (
    "interaction_shown", "interaction_clicked", "interaction_dismissed",
    "interaction_unknown_offer", "interaction_offer_closed", "interaction_unknown_sku",
)  # fmt: skip


def learn_interaction(state: CustomerState, event: Event, ranker: OfferRanker) -> list[str]:
    """Learn from one ``offer_interaction``; the outcome it counts.

    Teaches ``ranker.exposure`` in place (its one side effect). Only the customer's
    latest offer still holds the features its items were scored on: an interaction with
    an older offer (``interaction_unknown_offer``), with one whose reward window closed
    (``interaction_offer_closed``) or with an item it did not show
    (``interaction_unknown_sku``) is valid, but teaches nothing."""
    if event.type != INTERACTION:
        return []
    b, offer = event.body, state.offer
    if offer is None or offer.offer_id != b["offer_id"]:
        return ["interaction_unknown_offer"]
    if not offer.items:
        return ["interaction_offer_closed"]
    x = dict(offer.items).get(b["sku"])
    if x is None:
        return ["interaction_unknown_sku"]
    action = b["action"]
    if action == "shown":
        ranker.exposure.shown += 1
    else:
        ranker.exposure.learn(dict(x), clicked=action == "clicked", propensity=b["propensity"])
    return [f"interaction_{action}"]


def learn_choice(
    before: CustomerState | None,
    event: Event,
    stats: CandidateStats,
    ranker: OfferRanker,
    config: OfferConfig,
) -> list[str]:
    """Learn from one cart add or order; the outcomes it counts (for the replay's report).

    Teaches ``ranker`` in place (its one side effect); ``stats`` is only read."""
    if event.type not in CHOICES or before is None:
        return []
    pool = candidate_pool(before, stats, event.ts, config)
    targets = {sku for sku, _, _ in interactions(event)}.intersection(pool.skus)
    if not targets:
        return ["choice_target_not_candidate"] if pool.skus else []
    others = sorted([sku for sku in pool.skus if sku not in targets])
    rng = random.Random(int.from_bytes(hashlib.sha256(event.event_id.encode()).digest()[:8], "big"))
    drawn = rng.sample(others, min(NEGATIVES, len(others)))
    # Features of the drawn few only (a row does not depend on the other candidates).
    rows = features(
        before, [*sorted(targets), *drawn], stats, event.ts, pool.strength, pool.popularity
    )
    negatives = [rows[sku] for sku in drawn]
    for sku in sorted(targets):
        ranker.learn_example(rows[sku], negatives)
    return ["choice_learned"]
