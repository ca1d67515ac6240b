"""Uplift-targeted incentives: give the rule's coupon only where it pays for itself. Pure.

The coupon rule (:mod:`streamcrm.policies.coupon`) says *which* incentive a cart would get;
with ``coupon.targeting = "uplift"`` this module says *whether* to give it, from an online
uplift learner (:class:`streamcrm.learning.uplift.TwoModelUplift`) of P(recovered | x,
coupon) - P(recovered | x, no coupon):

- the expected incremental margin, ``uplift * cart_value * margin``, must exceed the
  coupon's expected cost, ``P(recovered | x, coupon) * discount`` (a discount is paid only
  on an order that uses it; ``discount`` is the percent of the cart, or
  ``free_shipping_cost``);
- until each arm has ``min_per_arm`` resolved abandonments the rule decides alone
  (``rule_fallback``);
- a share ``explore_share`` of the decisions the model would refuse still gets the rule's
  coupon (``explore``), drawn from the decision id so a replay explores exactly as live did,
  so the treated arm keeps being seen where the model says no.

The learner's example is the abandoned cart at its incentive-stage decision: features from
the customer's state then (:func:`uplift_features`), "treated" if a coupon was sent, and
the label when the abandonment resolves (recovered within the attribution window or not;
:mod:`streamcrm.policies.cart_resolution`). Held-out customers are the randomised control.

>>> cfg = UpliftTargeting(enabled=True, margin=0.3)
>>> give_incentive(0.20, 0.4, cart_value=100.0, kind="percent", percent=10.0, config=cfg)
(True, 6.0, 4.0)
>>> give_incentive(0.01, 0.4, cart_value=100.0, kind="percent", percent=10.0, config=cfg)
(False, 0.3, 4.0)
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from typing import Protocol

from streamcrm.policies.coupon import CouponDecision, CouponRule
from streamcrm.state import CustomerState

DAY = 86_400.0
LIFECYCLE = ("prospect", "new", "active", "loyal", "at_risk", "churned")
# Cart-value bands at the coupon rule's own edges (free shipping below, the percent tiers):
# the incentive changes there, so its effect may too, in steps a linear term in
# log(value) cannot follow; one-hot, so the two-model learner can fit a level per band.
_RULE = CouponRule()
VALUE_EDGES = tuple(sorted({_RULE.free_shipping_below, *(f for f, _ in _RULE.tiers if f > 0)}))
TARGETINGS = ("rule", "uplift")


@dataclass(frozen=True, slots=True)
class UpliftTargeting:
    """``coupon.targeting`` and its knobs (rules.toml). Off by default: a shop turns it on
    once its holdout has produced enough resolved carts to learn from; until then the rule
    is the better-understood policy, and the switch keeps every output as before."""

    enabled: bool = False
    min_per_arm: int = 200  # resolved abandonments per arm before the model decides
    explore_share: float = 0.1  # refused decisions that still get the rule's coupon
    margin: float = 0.3  # gross margin on an order's value
    free_shipping_cost: float = 4.9  # what a free-shipping incentive costs when used


class UpliftScorer(Protocol):
    """What targeting reads of the learner (:class:`~streamcrm.learning.uplift.TwoModelUplift`)."""

    def predict_arms(self, x: dict[str, float]) -> tuple[float, float]: ...

    def ready(self, min_per_arm: int) -> bool: ...


def target(
    decision: CouponDecision,
    x: dict[str, float],
    decision_id: str,
    config: UpliftTargeting,
    model: UpliftScorer | None,
) -> CouponDecision:
    """The rule's ``decision``, kept or turned into a plain reminder (``uplift_below_cost``);
    its inputs gain ``targeting`` (rule_fallback, uplift, explore) and ``predicted_uplift``
    (null when the rule decided alone), ``expected_gain`` and ``expected_cost``.

    >>> from streamcrm.learning.uplift import TwoModelUplift
    >>> rule = CouponDecision("percent", 10.0, "value_tier_2", {"cart_value": 100.0})
    >>> target(rule, {}, "cpn-1", UpliftTargeting(enabled=True), TwoModelUplift()).inputs
    {'cart_value': 100.0, 'targeting': 'rule_fallback', 'predicted_uplift': None}
    """
    inputs = dict(decision.inputs)
    if decision.kind == "none":
        return decision
    if model is None or not model.ready(config.min_per_arm):
        inputs |= {"targeting": "rule_fallback", "predicted_uplift": None}
        return replace(decision, inputs=inputs)
    control, treated = model.predict_arms(x)
    uplift = treated - control
    value = float(inputs.get("cart_value", 0.0))
    give, gain, cost = give_incentive(uplift, treated, cart_value=value, kind=decision.kind,
                                      percent=decision.percent, config=config)  # fmt: skip
    how = "uplift" if give else "explore" if explore_draw(decision_id) < config.explore_share else ""
    inputs |= {
        "targeting": how or "uplift", "predicted_uplift": round(uplift, 6),
        "expected_gain": gain, "expected_cost": cost,
    }  # fmt: skip
    if how:
        return replace(decision, inputs=inputs)
    return CouponDecision("none", None, "uplift_below_cost", inputs)


def uplift_features(state: CustomerState, now: float) -> dict[str, float]:
    """The customer's state at decision time, dense (every key always present).

    >>> from streamcrm.state import Cart, CartLine
    >>> s = CustomerState("c1", 0.0, 0.0, cart=Cart("k", (CartLine("a", 2, 10.0),), 1, 0.0))
    >>> x = uplift_features(s, DAY)
    >>> x["cart_items"], x["returning"], x["stage_prospect"], round(x["log_cart_value"], 3)
    (2.0, 0.0, 1.0, 3.045)
    >>> VALUE_EDGES, [k for k, v in x.items() if k.startswith("value_band") and v]
    ((40.0, 75.0, 150.0), ['value_band_0'])
    """
    cart = state.cart
    ordered = state.order_count > 0 and state.last_order_at is not None
    recency = min((now - state.last_order_at) / DAY, 365.0) if ordered and state.last_order_at else 0.0
    x = {
        "returning": 1.0 if ordered else 0.0,
        "recency_days": recency,
        "log_orders": math.log1p(max(state.order_count, 0)),
        "log_spend": math.log1p(max(state.total_spend, 0.0)),
        "log_cart_value": math.log1p(cart.value) if cart else 0.0,
        "cart_items": float(sum(line.qty for line in cart.lines)) if cart else 0.0,
        "checkout_started": 1.0 if cart and cart.checkout_started_at is not None else 0.0,
        "tier_member": 0.0 if state.profile.tier == "none" else 1.0,
        "coupons_redeemed": float(min(state.coupons_redeemed, 5)),
    }
    stage = state.profile.lifecycle_stage
    for name in LIFECYCLE:
        x[f"stage_{name}"] = 1.0 if stage == name else 0.0
    band = sum(1 for edge in VALUE_EDGES if cart and cart.value >= edge)
    for i in range(len(VALUE_EDGES) + 1):
        x[f"value_band_{i}"] = 1.0 if band == i else 0.0
    return x


def discount_of(kind: str, percent: float | None, value: float, config: UpliftTargeting) -> float:
    """What the incentive costs on an order of ``value`` that uses it.

    >>> discount_of("percent", 15.0, 200.0, UpliftTargeting()), discount_of("none", None, 9.0, UpliftTargeting())
    (30.0, 0.0)
    """
    if kind == "percent" and percent is not None:
        return round(value * percent / 100.0, 2)
    return config.free_shipping_cost if kind == "free_shipping" else 0.0


def give_incentive(
    uplift: float,
    p_treated: float,
    *,
    cart_value: float,
    kind: str,
    percent: float | None,
    config: UpliftTargeting,
) -> tuple[bool, float, float]:
    """(give?, expected incremental margin, expected cost) of the rule's incentive."""
    gain = round(uplift * cart_value * config.margin, 4)
    cost = round(p_treated * discount_of(kind, percent, cart_value, config), 4)
    return gain > cost, gain, cost


def explore_draw(decision_id: str) -> float:
    """A uniform draw in [0, 1) fixed by the decision id (deterministic exploration).

    >>> explore_draw("cpn-1") == explore_draw("cpn-1"), 0.0 <= explore_draw("cpn-2") < 1.0
    (True, True)
    """
    digest = hashlib.sha256(f"explore:{decision_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
