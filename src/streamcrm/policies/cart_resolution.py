"""How an abandoned cart ended: recovered within the attribution window (with its revenue)
or not. Pure.

Each abandoned cart is resolved exactly once: by the order that recovers it, or, with no
such order, when its attribution window closes (or when the customer's next cart is
abandoned first, since only one abandonment is watched at a time). The resolution is a
``cart_resolved`` audit record, one row per abandoned cart with its arm (the unit the
lift readout, :mod:`streamcrm.experiments.lift`, sums per cart and per customer), and, if
the cart reached an incentive-stage decision under uplift targeting, one example for the
uplift learner (features at that decision, treated = a coupon was sent, the outcome).

>>> from streamcrm.state import Abandonment, CustomerState
>>> ab = Abandonment("k1", 1, 0.0, coupon_kind="percent", coupon_percent=10.0, treated=True,
...                  uplift_x=(1.0,) * len(FEATURES))
>>> state = CustomerState("c1", 0.0, 0.0, abandonment=ab)
>>> state, record, example = resolve(state, 50.0, revenue=80.0, redeemed=True, arm="treatment")
>>> record["recovered"], record["coupon_cost"], example[1:], state.abandonment.resolved
(True, 8.0, (True, True), True)
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from streamcrm.policies.coupon_uplift import UpliftTargeting, discount_of, uplift_features
from streamcrm.state import Abandonment, CustomerState

KIND = "cart_resolved"
# The learner's feature names, in the order Abandonment.uplift_x holds their values.
FEATURES = tuple(uplift_features(CustomerState("", 0.0, 0.0), 0.0))

Example = tuple[dict[str, float], bool, bool]  # features, treated, recovered


def resolution_due(ab: Abandonment | None, window: float) -> float | None:
    """When an unrecovered abandoned cart's window closes (None: nothing to resolve)."""
    if ab is None or ab.abandoned_at is None or ab.recovered or ab.resolved:
        return None
    return ab.abandoned_at + window


def pack(x: dict[str, float]) -> tuple[float, ...]:
    return tuple(round(x[name], 6) for name in FEATURES)


def resolve(
    state: CustomerState,
    at: float,
    *,
    revenue: float | None,
    redeemed: bool,
    arm: str,
    targeting: UpliftTargeting | None = None,
) -> tuple[CustomerState, dict[str, Any], Example | None]:
    """Resolve the watched abandonment at ``at``: recovered if ``revenue`` is not None."""
    ab = state.abandonment
    assert ab is not None and ab.abandoned_at is not None
    recovered = revenue is not None
    cost = 0.0
    if redeemed and recovered and ab.coupon_kind is not None:
        cost = discount_of(ab.coupon_kind, ab.coupon_percent, revenue or 0.0,
                           targeting or UpliftTargeting())  # fmt: skip
    record = {
        "kind": KIND,
        "customer_id": state.customer_id,
        "at": at,
        "cart_id": ab.cart_id,
        "abandoned_at": ab.abandoned_at,
        "arm": arm,
        "recovered": recovered,
        "revenue": round(revenue, 2) if revenue is not None else 0.0,
        "coupon": ab.coupon_kind,
        "coupon_sent": ab.treated,
        "coupon_redeemed": redeemed,
        "coupon_cost": round(cost, 2),
        "predicted_uplift": ab.predicted_uplift,
    }
    example = None
    if len(ab.uplift_x) == len(FEATURES):
        example = (dict(zip(FEATURES, ab.uplift_x, strict=True)), ab.treated, recovered)
    state = replace(state, abandonment=replace(ab, resolved=True, recovered=ab.recovered or recovered))
    return state, record, example
