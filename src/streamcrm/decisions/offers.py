"""Next-best-offers as a decision: evaluate the last offer, learn from the choice, make a
new offer when it is time; close the reward window at its deadline. The rules are
:mod:`streamcrm.policies.next_best_offer` and :mod:`streamcrm.policies.offer_learning`.

Teaches ``ctx.learners`` (candidate statistics, ranker, gate) in place at events: its one
side effect (:class:`~streamcrm.decisions.learner_view.OfferLearners`; it cannot reach the
RFM or churn models).
"""

from __future__ import annotations

from typing import Any

from streamcrm.audit import OFFER_KIND
from streamcrm.crm_config import CrmConfig
from streamcrm.decisions.learner_view import OfferLearners
from streamcrm.events import Event
from streamcrm.evolve import evolve
from streamcrm.policies import next_best_offer as policy
from streamcrm.policies import offer_learning
from streamcrm.policies.contact import REASONS, history
from streamcrm.protocol import Context, Emitted, Step
from streamcrm.state import CustomerState

NAME = "offers"
LISTS = ("model", "popular", "recent", "cooc", "popular_exact", "learned", "fallback")
OUTCOMES = frozenset(
    {
        "nbo_evaluated", "nbo_target_seen", "choice_learned", "choice_target_not_candidate",
        "offer_sent", "shown_hit_at_5", "offer_by_model", "offer_by_fallback", "offer_resolved",
        *(f"offer_{reason}" for reason in REASONS),
        *(f"{name}_hit_at_{k}" for name in LISTS for k in (5, 10)),
        *offer_learning.INTERACTION_OUTCOMES,
    }
)  # fmt: skip
EMITS = frozenset({"next_best_offer", "offer_reward"})
FOLLOWS: frozenset[str] = frozenset()


def on_event(state: CustomerState, event: Event, ctx: Context[OfferLearners]) -> Step:
    config, learners, before = ctx.config, ctx.learners, ctx.before
    # Evaluated before this event is learned: was its target seen at all before it? (The
    # gate learns here; learn_choice teaches the ranker, learn_population the statistics.)
    rewarded = policy.reward_event(state, event, config.offers)  # before it is evaluated
    state, evaluated = policy.evaluate(state, event, learners.candidates, learners.gate)
    outcomes = list(evaluated)
    emitted: tuple[Emitted, ...] = (
        (Emitted("offer_reward", rewarded, event.ts),) if rewarded is not None else ()
    )
    if config.offers.learn:  # from the choice, against the candidates built before it
        outcomes += offer_learning.learn_choice(
            before, event, learners.candidates, learners.ranker, config.offers
        )
        # From what the customer did with an offer shown (the exposure model, apart).
        outcomes += offer_learning.learn_interaction(state, event, learners.ranker)
    policy.learn_population(before, event, learners.candidates)
    state = policy.reward(state, event, config.offers)
    evaluations = (evaluated,) if evaluated else ()
    if not policy.should_offer(state, event, config.offers):
        return Step(state, emitted, tuple(outcomes), evaluations=evaluations)
    state = policy.resolve(state, learners.ranker)  # the old offer's labels, now
    contact, sent = config.contact, history(state, event.ts)
    verdict = contact.check(
        "offer", state.customer_id, consent=contact.consent(state.consent), history=sent,
        now=event.ts,
    )  # fmt: skip
    offer = None
    if not verdict.allowed:
        outcomes.append(f"offer_{verdict.reason}")
    else:
        state, offer = policy.make_offer(
            state, event, learners.candidates, learners.ranker, config.offers, learners.gate,
            with_exposure=config.offer_exposure,
        )  # fmt: skip
        if offer is not None:
            state = evolve(state, offers_sent_at=(*sent["offer"], event.ts))
            emitted += (Emitted("next_best_offer", offer, event.ts),)
            by = "fallback" if offer["model_version"] == policy.FALLBACK_VERSION else "model"
            outcomes += ("offer_sent", f"offer_by_{by}")
    audit = (audit_record(state, event, verdict.reason, offer),) if config.audit_offers else ()
    return Step(
        state, emitted=emitted, outcomes=tuple(outcomes), audit=audit, evaluations=evaluations
    )


def audit_record(
    state: CustomerState, event: Event, verdict: str, offer: dict[str, Any] | None
) -> dict[str, Any]:
    """The decision's record for the audit topic: its verdict (ok, or why the contact
    policy refused), what triggered it and, when a list was made, its items with their
    scores and propensities (the ranker's inputs are the customer's state and the
    candidate statistics at that moment, too large to log)."""
    record: dict[str, Any] = {
        "customer_id": state.customer_id, "at": event.ts, "kind": OFFER_KIND,
        "verdict": verdict, "sent": offer is not None,
        "inputs": {"event_id": event.event_id, "event_type": event.type},
    }  # fmt: skip
    if offer is not None:
        record["offer_id"] = offer["offer_id"]
        record["model_version"] = offer["model_version"]
        record["items"] = [
            {"sku": i["sku"], "score": i["score"], "propensity": i["propensity"]}
            for i in offer["items"]
        ]
    return record


def due(state: CustomerState, config: CrmConfig) -> float | None:
    return policy.resolve_due(state, config.offers)


def on_due(state: CustomerState, now: float, ctx: Context[OfferLearners]) -> Step:
    """The reward window closed (no learner is touched)."""
    return Step(policy.resolve(state, ctx.learners.ranker), outcomes=("offer_resolved",))
