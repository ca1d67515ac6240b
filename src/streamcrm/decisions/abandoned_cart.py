"""Abandoned carts as a decision: recoveries on events, reminder and coupon stages on
deadlines. The rules are :mod:`streamcrm.policies.abandoned_cart`; this adapts them.
Pure: no learner is touched."""

from __future__ import annotations

from streamcrm.crm_config import CrmConfig
from streamcrm.events import Event
from streamcrm.policies import abandoned_cart as policy
from streamcrm.policies.contact import REASONS
from streamcrm.protocol import Context, Emitted, Step
from streamcrm.state import CustomerState

NAME = "abandoned_cart"
ARMS = ("treatment", "holdout")
OUTCOMES = frozenset(
    {
        "cart_started", "cart_abandoned", "reminded", "couponed", "holdout",
        "recovered_treated", "recovered_holdout", "recovered_uncontacted", "redeemed",
        "suppressed_cart_value_out_of_range",
        *(f"suppressed_{r}" for r in REASONS if r != "holdout"),
        *(f"incentive_withheld_{r}" for r in policy.WITHHELD),
        *(f"itt_abandoned_{arm}" for arm in ARMS),
        *(f"itt_recovered_{arm}" for arm in ARMS),
    }
)  # fmt: skip
EMITS = frozenset({"coupon_issued"})
FOLLOWS: frozenset[str] = frozenset()


def on_event(state: CustomerState, event: Event, ctx: Context) -> Step:
    config = ctx.config
    state, outcomes = policy.after_event(ctx.before, state, event, config.abandon, config.contact)
    return Step(state, outcomes=tuple(outcomes)) if outcomes else Step(state)


def on_emitted(state: CustomerState, emitted: Emitted, ctx: Context) -> Step:
    return Step(state)


def due(state: CustomerState, config: CrmConfig) -> float | None:
    return policy.next_due(state, config.abandon)


def on_due(state: CustomerState, now: float, ctx: Context) -> Step:
    config = ctx.config
    fired = policy.fire_due(state, now, config.abandon, config.contact, config.sla)
    return Step(
        fired.state,
        emitted=tuple(Emitted("coupon_issued", c, now) for c in fired.coupons),
        outcomes=tuple(fired.outcomes),
        audit=tuple(fired.decisions),
    )
