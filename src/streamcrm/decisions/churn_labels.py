"""Churn labels that resolve later: at each new order the open example closes as a
positive (they ordered again within the horizon) and a new one opens; at its horizon an
open example closes as a negative. Teaches the churn model, ``ctx.learners.churn.learn_one``
(its one side effect; :class:`~streamcrm.decisions.learner_view.ChurnLabelLearners`).
"""

from __future__ import annotations

from streamcrm.crm_config import CrmConfig
from streamcrm.decisions.learner_view import ChurnLabelLearners
from streamcrm.events import Event
from streamcrm.evolve import evolve
from streamcrm.learning.churn import churn_features
from streamcrm.protocol import Context, Step
from streamcrm.state import CustomerState

NAME = "churn_labels"
OUTCOMES = frozenset({"churn_label_0"})
EMITS: frozenset[str] = frozenset()
FOLLOWS: frozenset[str] = frozenset()


def new_order(before: CustomerState | None, state: CustomerState, event: Event) -> bool:
    """Did this event place an order not counted before (not a redelivered one)?"""
    return event.type == "order_placed" and state.order_count != (
        before.order_count if before else 0
    )


def order_features(before: CustomerState | None, state: CustomerState, ts: float) -> dict[str, float]:
    """As of the order's moment, before it was applied: what the example and the score see."""
    return churn_features(before or CustomerState(state.customer_id, ts, ts), ts)


def on_event(state: CustomerState, event: Event, ctx: Context[ChurnLabelLearners]) -> Step:
    """Close the open example as a positive (ordered again in time; teaches the churn
    model), open a new one."""
    if not new_order(ctx.before, state, event):
        return Step(state)
    x = order_features(ctx.before, state, event.ts)
    pending = state.profile.churn_pending
    if pending is not None and event.ts - pending[0] <= ctx.config.churn_horizon_s:
        ctx.learners.churn.learn_one(dict(pending[1]), ordered_again=True, group=state.customer_id)
    profile = evolve(state.profile, churn_pending=(event.ts, tuple(sorted(x.items()))))
    return Step(evolve(state, profile=profile))


def due(state: CustomerState, config: CrmConfig) -> float | None:
    pending = state.profile.churn_pending
    return pending[0] + config.churn_horizon_s if pending else None


def on_due(state: CustomerState, now: float, ctx: Context[ChurnLabelLearners]) -> Step:
    """No order within the horizon: the open example is a negative (teaches the churn model)."""
    pending = state.profile.churn_pending
    if pending is None:
        return Step(state)
    ctx.learners.churn.learn_one(dict(pending[1]), ordered_again=False, group=state.customer_id)
    state = evolve(state, profile=evolve(state.profile, churn_pending=None))
    return Step(state, outcomes=("churn_label_0",))
