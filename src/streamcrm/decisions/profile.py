"""Customer profiles as a decision: points and tiers at orders, RFM and the churn score
against the population, the lifecycle stage (on events, and at the deadline where it
would change with no event); a ``customer_profile_updated`` event when something changed.

The rules are :mod:`streamcrm.policies.profile`. Teaches ``ctx.learners.rfm`` (the
streaming quantiles) in place, its one side effect, and only reads the churn model
(:class:`~streamcrm.decisions.learner_view.ProfileLearners`).
"""

from __future__ import annotations

import hashlib
from typing import Any

from streamcrm.crm_config import CrmConfig
from streamcrm.decisions.churn_labels import new_order, order_features
from streamcrm.decisions.learner_view import ProfileLearners
from streamcrm.events import Event, format_ts
from streamcrm.evolve import evolve
from streamcrm.learning.churn import churn_features
from streamcrm.learning.rfm import segment
from streamcrm.policies import profile as policy
from streamcrm.policies.profile import DAY
from streamcrm.protocol import Context, Emitted, Step
from streamcrm.state import CustomerState

NAME = "profile"
STAGES = ("prospect", "new", "active", "loyal", "at_risk", "churned")
OUTCOMES = frozenset(f"lifecycle_stage:{stage}" for stage in STAGES)
EMITS = frozenset({"customer_profile_updated"})
FOLLOWS: frozenset[str] = frozenset()
ORDERS = frozenset({"order_placed", "order_cancelled"})


def on_event(state: CustomerState, event: Event, ctx: Context[ProfileLearners]) -> Step:
    segment_before = state.profile.segment
    if event.type in ORDERS:
        state = policy.on_order(state, ctx.before, event, ctx.config.profile)
    if new_order(ctx.before, state, event):
        x = order_features(ctx.before, state, event.ts)
        state = rescore(state, event.ts, ctx.learners, x)
    return refresh(state, event.ts, ctx.config, segment_before)


def due(state: CustomerState, config: CrmConfig) -> float | None:
    return policy.stage_due(state, config.profile)


def on_due(state: CustomerState, now: float, ctx: Context[ProfileLearners]) -> Step:
    return refresh(rescore(state, now, ctx.learners), now, ctx.config, state.profile.segment)


def rescore(
    state: CustomerState,
    now: float,
    learners: ProfileLearners,
    churn_x: dict[str, float] | None = None,
) -> CustomerState:
    """RFM against the population and the churn score, as of ``now`` (on ``churn_x``
    when given: at an order, the features its churn example was opened with). Teaches
    the RFM quantiles these values first (the one side effect)."""
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


def refresh(
    state: CustomerState, at: float, config: CrmConfig, old_segment: str | None
) -> Step:
    """Stage and tier at ``at`` (never before the last evaluation: a customer's time never
    goes back); the profile event if either, or the segment since ``old_segment`` (the
    customer's before this step's rescore), changed."""
    evaluated = state.profile.evaluated_at
    at = at if evaluated is None else max(at, evaluated)
    state, changes = policy.refresh(state, at, config.profile)
    if state.profile.segment != old_segment:
        changes.append(("segment", old_segment, state.profile.segment))
    if not changes:
        return Step(state)
    outcomes = tuple(f"{f}:{new}" for f, _, new in changes if f == "lifecycle_stage")
    emitted = Emitted("customer_profile_updated", profile_event(state, changes, at), at)
    return Step(state, emitted=(emitted,), outcomes=outcomes)


def became(emitted: Emitted, field: str, value: str) -> bool:
    """Does this profile event record ``field`` changing to ``value``?"""
    return any(c["field"] == field and c["new"] == value for c in emitted.body["changes"])


def profile_event(
    state: CustomerState, changes: list[tuple[str, str | None, str | None]], at: float
) -> dict[str, Any]:
    p = state.profile
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
