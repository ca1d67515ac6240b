"""Which incentive an abandoned cart gets: a transparent rule, with a seam for a learned one.

The rule, in order:

1. the stage carries no incentive (e.g. the first reminder)  -> reminder, no discount;
2. the customer is likely to buy anyway (propensity >= ``buy_anyway``) -> reminder only:
   a discount would give margin away for nothing;
3. a frequent coupon user (``max_redeemed`` or more redeemed) -> free shipping at most;
4. a cart below ``free_shipping_below`` -> free shipping;
5. otherwise the percentage of the highest value tier the cart reaches; a first-time
   buyer gets one tier more (winning the first order is worth more).

>>> rule = CouponRule()
>>> rule.decide(CouponInputs(cart_value=120.0, order_count=0, coupons_redeemed=0,
...                          propensity=0.2), incentive=True).percent
15.0
>>> rule.decide(CouponInputs(120.0, 3, 0, propensity=0.9), incentive=True).kind
'none'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

from streamcrm.state import CustomerState


@dataclass(frozen=True, slots=True)
class CouponInputs:
    cart_value: float
    order_count: int
    coupons_redeemed: int
    propensity: float  # probability the customer orders this cart without an incentive


@dataclass(frozen=True, slots=True)
class CouponDecision:
    kind: str  # "none" | "free_shipping" | "percent"
    percent: float | None
    rule: str
    inputs: dict[str, Any]


class PropensityModel(Protocol):
    """The seam for a learned model (e.g. a River classifier trained on holdout outcomes)."""

    def predict_one(self, x: dict[str, float]) -> float: ...


def propensity_features(state: CustomerState, now: float) -> dict[str, float]:
    cart = state.cart
    return {
        "cart_value": cart.value if cart else 0.0,
        "checkout_started": 1.0 if cart and cart.checkout_started_at is not None else 0.0,
        "order_count": float(state.order_count),
        "days_since_order": (now - state.last_order_at) / 86_400 if state.last_order_at else -1.0,
        "views": float(len(state.recent_views)),
    }


@dataclass(frozen=True, slots=True)
class RulePropensity:
    """A transparent starting score: checkout started and buying history raise it.

    >>> RulePropensity().predict_one({"checkout_started": 1.0, "order_count": 4.0})
    0.81
    """

    def predict_one(self, x: dict[str, float]) -> float:
        score = 0.1
        score += 0.35 if x.get("checkout_started") else 0.0
        score += min(x.get("order_count", 0.0), 3.0) * 0.12
        return round(min(score, 0.95), 4)


@dataclass(frozen=True, slots=True)
class CouponRule:
    buy_anyway: float = 0.7
    free_shipping_below: float = 40.0
    max_redeemed: int = 2
    # (minimum cart value, percent off), ascending.
    tiers: tuple[tuple[float, float], ...] = ((0.0, 5.0), (75.0, 10.0), (150.0, 15.0))

    def decide(self, x: CouponInputs, *, incentive: bool) -> CouponDecision:
        inputs = asdict(x)
        if not incentive:
            return CouponDecision("none", None, "reminder_stage", inputs)
        if x.propensity >= self.buy_anyway:
            return CouponDecision("none", None, "likely_to_buy_anyway", inputs)
        if x.coupons_redeemed >= self.max_redeemed:
            return CouponDecision("free_shipping", None, "frequent_coupon_user", inputs)
        if x.cart_value < self.free_shipping_below:
            return CouponDecision("free_shipping", None, "low_value_cart", inputs)
        reached = [i for i, (floor, _) in enumerate(self.tiers) if x.cart_value >= floor]
        tier = reached[-1] if reached else 0
        if x.order_count == 0:
            tier = min(tier + 1, len(self.tiers) - 1)
        rule = "first_order_tier" if x.order_count == 0 else "value_tier"
        return CouponDecision("percent", self.tiers[tier][1], f"{rule}_{tier + 1}", inputs)
