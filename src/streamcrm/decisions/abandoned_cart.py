"""Abandoned carts as a decision: recoveries on events, reminder and coupon stages and the
close of each cart's attribution window on deadlines. The rules are
:mod:`streamcrm.policies.abandoned_cart`; this adapts them. Pure but for one side effect
with ``coupon.targeting = "uplift"``: each resolved abandonment teaches the coupon uplift
learner, ``ctx.learners.uplift.learn_one``, which the incentive stages read
(:class:`~streamcrm.decisions.learner_view.CartLearners`)."""

from __future__ import annotations

from streamcrm.crm_config import CrmConfig
from streamcrm.decisions.learner_view import CartLearners
from streamcrm.events import Event
from streamcrm.policies import abandoned_cart as policy
from streamcrm.policies.cart_resolution import Example
from streamcrm.policies.contact import REASONS
from streamcrm.protocol import Context, Emitted, Step
from streamcrm.state import CustomerState

NAME = "abandoned_cart"
ARMS = ("treatment", "holdout")
OUTCOMES = frozenset(
    {
        "cart_started", "cart_abandoned", "reminded", "couponed", "holdout",
        "recovered_treated", "recovered_holdout", "recovered_uncontacted", "redeemed",
        "suppressed_cart_value_out_of_range", "uplift_learned",
        *(f"suppressed_{r}" for r in REASONS if r != "holdout"),
        *(f"incentive_withheld_{r}" for r in policy.WITHHELD),
        *(f"itt_abandoned_{arm}" for arm in ARMS),
        *(f"itt_recovered_{arm}" for arm in ARMS),
    }
)  # fmt: skip
EMITS = frozenset({"coupon_issued"})
FOLLOWS: frozenset[str] = frozenset()


def on_event(state: CustomerState, event: Event, ctx: Context[CartLearners]) -> Step:
    """Recoveries (a recovered cart's example teaches the uplift learner when targeting is on)."""
    config = ctx.config
    state, outcomes, records, examples = policy.after_event(
        ctx.before, state, event, config.abandon, config.contact
    )
    outcomes += _teach(examples, ctx)
    if not outcomes and not records:
        return Step(state)
    return Step(state, outcomes=tuple(outcomes), audit=tuple(records))


def due(state: CustomerState, config: CrmConfig) -> float | None:
    return policy.next_due(state, config.abandon)


def on_due(state: CustomerState, now: float, ctx: Context[CartLearners]) -> Step:
    """Stages and window closes (an unrecovered cart's example teaches, as above)."""
    config = ctx.config
    uplift = ctx.learners.uplift if config.abandon.targeting.enabled else None
    fired = policy.fire_due(state, now, config.abandon, config.contact, config.sla, uplift)
    return Step(
        fired.state,
        emitted=tuple(Emitted("coupon_issued", c, now) for c in fired.coupons),
        outcomes=(*fired.outcomes, *_teach(fired.examples, ctx)),
        audit=tuple(fired.decisions),
    )


def _teach(examples: list[Example], ctx: Context[CartLearners]) -> list[str]:
    if not ctx.config.abandon.targeting.enabled:
        return []
    for x, treated, recovered in examples:
        ctx.learners.uplift.learn_one(x, treated=treated, y=recovered)
    return ["uplift_learned"] * len(examples)
