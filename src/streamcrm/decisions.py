"""Every decision about one customer, composed: abandoned carts, profiles, churn, win-back.

Three entry points, all taking time as an argument:

- :func:`after_event`: what an applied event changes (recoveries, points, stage, RFM,
  churn labels) and what it emits;
- :func:`next_due`: the customer's next deadline of any kind (derived from state, so it
  survives restarts with the state itself);
- :func:`fire_due`: take every step due by ``now``, in time order.

The population-level learners (RFM quantiles, the churn model) are passed in; they learn
as a side effect, as River estimators do, and hold no per-customer state.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from streamcrm.events import Event, format_ts
from streamcrm.evolve import evolve
from streamcrm.learning.candidates import MAX_SKUS, CandidateStats
from streamcrm.learning.churn import ChurnModel, churn_features
from streamcrm.learning.offer_gate import OfferGate
from streamcrm.learning.ranking import OfferRanker
from streamcrm.learning.rfm import RFMScorer, segment
from streamcrm.policies import abandoned_cart, next_best_offer, offer_learning, profile
from streamcrm.policies.abandoned_cart import AbandonConfig
from streamcrm.policies.contact import in_holdout
from streamcrm.policies.next_best_offer import OfferConfig
from streamcrm.policies.profile import DAY, ProfileConfig
from streamcrm.state import CustomerState
from streamcrm.state import Profile as ProfileState


@dataclass(frozen=True, slots=True)
class CrmConfig:
    abandon: AbandonConfig = field(default_factory=AbandonConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    churn_horizon_s: float = 30 * DAY
    winback_items: int = 3
    offers: OfferConfig = field(default_factory=OfferConfig)
    tracked_skus: int = MAX_SKUS  # the candidate statistics' cap (memory ~ this)


@dataclass(slots=True)
class Learners:
    rfm: RFMScorer = field(default_factory=RFMScorer)
    churn: ChurnModel = field(default_factory=ChurnModel)
    candidates: CandidateStats = field(default_factory=CandidateStats)
    ranker: OfferRanker = field(default_factory=OfferRanker)
    gate: OfferGate = field(default_factory=OfferGate)


@dataclass(slots=True)
class Outputs:
    coupons: list[dict[str, Any]] = field(default_factory=list)
    profile_events: list[dict[str, Any]] = field(default_factory=list)
    offers: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    evaluations: list[list[str]] = field(default_factory=list)  # per evaluated offer, its hits


def next_due(state: CustomerState, config: CrmConfig) -> float | None:
    pending = state.profile.churn_pending
    candidates = (
        abandoned_cart.next_due(state, config.abandon),
        profile.stage_due(state, config.profile),
        pending[0] + config.churn_horizon_s if pending else None,
        next_best_offer.resolve_due(state, config.offers),
    )
    return min((c for c in candidates if c is not None), default=None)


def after_event(
    before: CustomerState | None,
    after: CustomerState,
    event: Event,
    config: CrmConfig,
    learners: Learners,
) -> tuple[CustomerState, Outputs]:
    out = Outputs()
    state, outcomes = abandoned_cart.after_event(before, after, event, config.abandon)
    out.outcomes += outcomes
    if event.type in {"order_placed", "order_cancelled"}:
        state = profile.on_order(state, before, event, config.profile)
    if event.type == "order_placed" and state.order_count != (before.order_count if before else 0):
        # As of this moment, before this order: what the example and the score both see.
        x = churn_features(before or CustomerState(state.customer_id, event.ts, event.ts), event.ts)
        state = _churn_example(state, x, event.ts, config, learners)
        state = _rescore(state, event.ts, learners, x)
    state = _offers(before, state, event, config, learners, out)
    return _refresh(state, event.ts, config, learners, out)


def _offers(
    before: CustomerState | None,
    state: CustomerState,
    event: Event,
    config: CrmConfig,
    learners: Learners,
    out: Outputs,
) -> CustomerState:
    # Evaluated before this event is learned: was its target seen at all before it?
    state, evaluated = next_best_offer.evaluate(state, event, learners.candidates, learners.gate)
    out.outcomes += evaluated
    if evaluated:
        out.evaluations.append(evaluated)
    if config.offers.learn:  # from the choice, against the candidates built before it
        out.outcomes += offer_learning.learn_choice(
            before, event, learners.candidates, learners.ranker, config.offers
        )
    next_best_offer.learn_population(before, event, learners.candidates)
    state = next_best_offer.reward(state, event, config.offers)
    if not next_best_offer.should_offer(state, event, config.offers):
        return state
    state = next_best_offer.resolve(state, learners.ranker)  # the old offer's labels, now
    consent = config.abandon.consent_default if state.consent is None else state.consent
    if not consent:
        out.outcomes.append("offer_no_consent")
        return state
    if in_holdout(
        state.customer_id, config.abandon.contact.holdout_share, config.abandon.contact.holdout_salt
    ):
        out.outcomes.append("offer_holdout")
        return state
    state, offer = next_best_offer.make_offer(
        state, event, learners.candidates, learners.ranker, config.offers, learners.gate
    )
    if offer is not None:
        out.offers.append(offer)
        out.outcomes.append("offer_sent")
        by = "fallback" if offer["model_version"] == next_best_offer.FALLBACK_VERSION else "model"
        out.outcomes.append(f"offer_by_{by}")
    return state


def fire_due(
    state: CustomerState, now: float, config: CrmConfig, learners: Learners
) -> tuple[CustomerState, Outputs]:
    out = Outputs()
    due = next_due(state, config)
    while due is not None and due <= now:
        started_as = state
        pending = state.profile.churn_pending
        if abandoned_cart.next_due(state, config.abandon) == due:
            fired = abandoned_cart.fire_due(state, due, config.abandon)
            state = fired.state
            out.coupons += fired.coupons
            out.outcomes += fired.outcomes
            out.decisions += fired.decisions
        elif next_best_offer.resolve_due(state, config.offers) == due:
            state = next_best_offer.resolve(state, learners.ranker)
            out.outcomes.append("offer_resolved")
        elif pending is not None and pending[0] + config.churn_horizon_s == due:
            learners.churn.learn_one(dict(pending[1]), ordered_again=False, group=state.customer_id)
            state = evolve(state, profile=evolve(state.profile, churn_pending=None))
            out.outcomes.append("churn_label_0")
        else:
            state = _rescore(state, due, learners)
            state, refreshed = _refresh(state, due, config, learners, Outputs())
            _merge(out, refreshed)
        following = next_due(state, config)
        if following == due and state == started_as:  # nothing could move: stop, never spin
            break
        due = following
    return state, out


def _churn_example(
    state: CustomerState, x: dict[str, float], ts: float, config: CrmConfig, learners: Learners
) -> CustomerState:
    """Close the open example as a positive (they ordered again in time), open a new one
    with ``x``, the features as of this order's moment (taken before it was applied)."""
    pending = state.profile.churn_pending
    if pending is not None and ts - pending[0] <= config.churn_horizon_s:
        learners.churn.learn_one(dict(pending[1]), ordered_again=True, group=state.customer_id)
    return evolve(
        state, profile=evolve(state.profile, churn_pending=(ts, tuple(sorted(x.items()))))
    )


def _rescore(
    state: CustomerState, now: float, learners: Learners, churn_x: dict[str, float] | None = None
) -> CustomerState:
    """RFM against the population and the churn score, as of ``now`` (on ``churn_x``
    when given: at an order, the features its churn example was opened with)."""
    if state.order_count <= 0 or state.last_order_at is None:
        return state
    values = {
        "recency_days": (now - state.last_order_at) / DAY,
        "frequency": float(state.order_count),
        "monetary": state.total_spend,
    }
    learners.rfm.learn_one(**values)
    rfm = learners.rfm.score_one(**values)
    score = learners.churn.churn_score(churn_x or churn_features(state, now))
    return evolve(
        state,
        profile=evolve(
            state.profile, rfm=rfm, segment=segment(rfm) if rfm else None, churn_score=score
        ),
    )


def _refresh(
    state: CustomerState, at: float, config: CrmConfig, learners: Learners, out: Outputs
) -> tuple[CustomerState, Outputs]:
    old_segment = state.profile.segment
    evaluated = state.profile.evaluated_at
    at = at if evaluated is None else max(at, evaluated)  # a customer's time never goes back
    state, changes = profile.refresh(state, at, config.profile)
    if state.profile.segment != old_segment:
        changes.append(("segment", old_segment, state.profile.segment))
    if not changes:
        return state, out
    out.profile_events.append(profile_event(state, changes, at))
    out.outcomes += [f"{field}:{new}" for field, _, new in changes if field == "lifecycle_stage"]
    if ("lifecycle_stage", "at_risk") in {(f, n) for f, _, n in changes}:
        state = _winback(state, at, config, out)
    return state, out


def _winback(state: CustomerState, at: float, config: CrmConfig, out: Outputs) -> CustomerState:
    """One win-back offer per at-risk episode, through the shared contact policy."""
    p = state.profile
    if (
        p.winback_sent_at is not None
        and state.last_order_at is not None
        and p.winback_sent_at > state.last_order_at
    ):
        return state  # already sent in this episode
    consent = config.abandon.consent_default if state.consent is None else state.consent
    sent = (p.winback_sent_at,) if p.winback_sent_at is not None else ()
    verdict = config.abandon.contact.check(state.customer_id, consent=consent, sent_at=sent, now=at)
    if not verdict.allowed:
        out.outcomes.append(f"winback_{verdict.reason}")
        return state
    items = _affinity_items(state, config.winback_items)
    if not items:
        out.outcomes.append("winback_no_candidates")
        return state
    offer_id = winback_offer_id(state)
    out.offers.append(
        {
            "event_id": offer_id,
            "type": "next_best_offer",
            "customer_id": state.customer_id,
            "ts": format_ts(at),
            "offer_id": offer_id,
            "trigger": "win_back",
            "model_version": "affinity-rule-v1",
            "items": items,
        }
    )
    out.outcomes.append("winback_sent")
    return evolve(state, profile=evolve(p, winback_sent_at=at))


def winback_offer_id(state: CustomerState) -> str:
    """The win-back offer of the customer's current at-risk episode (one per episode)."""
    digest = hashlib.sha256(f"{state.customer_id}|{state.last_order_at}".encode()).hexdigest()
    return "wb-" + digest[:24]


def _affinity_items(state: CustomerState, n: int) -> list[dict[str, Any]]:
    """Recently viewed products in the customer's most viewed category, not bought lately."""
    counts: dict[str, int] = {}
    for view in state.recent_views:
        counts[view.category] = counts.get(view.category, 0) + 1
    if not counts:
        return []
    favourite = max(sorted(counts), key=counts.__getitem__)
    picks = [v.sku for v in state.recent_views if v.category == favourite][:n]
    return [
        {"sku": sku, "rank": i + 1, "score": 1.0 / (i + 1), "propensity": 1.0,
         "reason": f"you looked at this in {favourite}"[:256]}
        for i, sku in enumerate(picks)
    ]  # fmt: skip


def profile_event(
    state: CustomerState, changes: list[tuple[str, str | None, str | None]], at: float
) -> dict[str, Any]:
    p: ProfileState = state.profile
    digest = hashlib.sha256(f"{state.customer_id}|{at}|{changes}".encode()).hexdigest()[:24]
    snapshot: dict[str, Any] = {
        "lifecycle_stage": p.lifecycle_stage,
        "tier": p.tier,
        "points": p.points,
    }
    if p.segment:
        snapshot["segment"] = p.segment
    if p.rfm:
        snapshot["rfm"] = dict(zip("rfm", p.rfm, strict=True))
    if p.churn_score is not None:
        snapshot["churn_score"] = p.churn_score
    return {
        "event_id": f"prof-{digest}",
        "type": "customer_profile_updated",
        "customer_id": state.customer_id,
        "ts": format_ts(at),
        "changes": [{"field": f, "old": o, "new": n} for f, o, n in changes],
        "profile": snapshot,
    }


def _merge(out: Outputs, more: Outputs) -> None:
    out.coupons += more.coupons
    out.profile_events += more.profile_events
    out.offers += more.offers
    out.outcomes += more.outcomes
    out.decisions += more.decisions
