"""Issue 16: abandoned carts resolve once with their revenue and coupon cost (the lift
readout's rows), and coupon.targeting = "uplift" gates the rule's incentive on the uplift
learner, with rule fallback, deterministic exploration and the prediction recorded."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

import orjson
import pytest

from streamcrm.decisions import CrmConfig, Learners
from streamcrm.events import format_ts
from streamcrm.experiments.lift import lift_from_rows
from streamcrm.experiments.planted import run_planted
from streamcrm.ingest import Processor, Record
from streamcrm.learning import checkpoint
from streamcrm.policies.abandoned_cart import AbandonConfig
from streamcrm.policies.contact import ContactConfig
from streamcrm.policies.coupon import CouponDecision
from streamcrm.policies.coupon_uplift import UpliftTargeting, explore_draw, target
from streamcrm.rules import RulesError, rules_from
from streamcrm.state import CustomerState
from streamcrm.stats.intervals import newcombe_diff

T0 = 1_790_000_000.0
DAY = 86_400.0
TOPICS = {"c": "cart", "o": "order", "b": "browse"}
ON = UpliftTargeting(enabled=True, min_per_arm=10, explore_share=0.0)


@dataclass
class Fixed:
    """A scorer with set predictions (the gate's input), ready after ``seen`` per arm."""

    control: float
    treated: float
    seen: int = 100

    def predict_arms(self, x: dict[str, float]) -> tuple[float, float]:
        return self.control, self.treated

    def ready(self, min_per_arm: int) -> bool:
        return self.seen >= min_per_arm


RULE = CouponDecision("percent", 10.0, "value_tier_2", {"cart_value": 100.0})


def test_falls_back_to_the_rule_until_each_arm_has_enough() -> None:
    out = target(RULE, {}, "cpn-1", ON, Fixed(0.5, 0.5, seen=9))
    assert (out.kind, out.percent, out.inputs["targeting"]) == ("percent", 10.0, "rule_fallback")
    assert out.inputs["predicted_uplift"] is None
    assert target(RULE, {}, "cpn-1", ON, None).inputs["targeting"] == "rule_fallback"


def test_gives_only_where_the_incremental_margin_exceeds_the_expected_cost() -> None:
    # 100 cart, 30% margin, 10% off: gain = uplift * 30, cost = P(treated) * 10.
    give = target(RULE, {}, "cpn-1", ON, Fixed(0.2, 0.4))  # gain 6.0 > cost 4.0
    assert give.kind == "percent" and give.inputs["targeting"] == "uplift"
    assert give.inputs["predicted_uplift"] == pytest.approx(0.2)
    refuse = target(RULE, {}, "cpn-1", ON, Fixed(0.35, 0.4))  # gain 1.5 < cost 4.0
    assert (refuse.kind, refuse.rule) == ("none", "uplift_below_cost")
    assert refuse.inputs["expected_gain"] == 1.5 and refuse.inputs["expected_cost"] == 4.0
    even = target(RULE, {}, "cpn-1", ON, Fixed(0.25, 0.375))  # gain 3.75 = cost 3.75
    assert (even.kind, even.inputs["expected_gain"]) == ("none", even.inputs["expected_cost"])
    none = CouponDecision("none", None, "likely_to_buy_anyway", {})
    assert target(none, {}, "cpn-1", ON, Fixed(0.0, 0.9)) is none  # the rule said no


def test_exploration_is_seeded_by_the_decision_id_and_keeps_its_share() -> None:
    config = replace(ON, explore_share=0.2)
    ids = [f"cpn-{i}" for i in range(4000)]
    kinds = [target(RULE, {}, i, config, Fixed(0.4, 0.4)).inputs["targeting"] for i in ids]
    assert kinds == [target(RULE, {}, i, config, Fixed(0.4, 0.4)).inputs["targeting"] for i in ids]
    share = kinds.count("explore") / len(ids)
    assert 0.18 < share < 0.22
    assert all((k == "explore") == (explore_draw(i) < 0.2) for i, k in zip(ids, kinds, strict=True))
    # Only refusals explore: where the model gives, every coupon is the model's.
    given = [target(RULE, {}, i, config, Fixed(0.2, 0.4)) for i in ids[:200]]
    assert all(d.kind == "percent" and d.inputs["targeting"] == "uplift" for d in given)


class Shop:
    def __init__(self, crm: CrmConfig) -> None:
        self.processor = Processor(TOPICS, crm=crm, clock="event")
        self.table: dict[str, CustomerState] = {}
        self.coupons: list[dict[str, Any]] = []
        self.decisions: list[dict[str, Any]] = []
        self.outcomes: list[str] = []
        self.n = 0

    def send(self, topic: str, type_: str, ts: float, customer: str, **body: Any) -> None:
        self.n += 1
        event = {"event_id": f"e{self.n}", "type": type_, "customer_id": customer,
                 "ts": format_ts(ts), "channel": "web", **body}  # fmt: skip
        record = Record(topic, 0, self.n, customer.encode(), orjson.dumps(event))
        result = self.processor.process([record], self.table.get, now=ts)
        for cid, (_, state) in result.states.items():
            self.table[cid] = state
        self.coupons += [c for _, c in result.coupons]
        self.decisions += result.decisions
        self.outcomes += list(result.outcomes.elements())

    def cart(self, ts: float, customer: str, value: float = 100.0) -> None:
        self.send("c", "cart_item_added", ts, customer, cart_id=f"{customer}-k", sku="s1",
                  qty=1, unit_price=value)  # fmt: skip

    def order(self, ts: float, customer: str, total: float, code: str | None) -> None:
        lines = [{"sku": "s1", "qty": 1, "unit_price": total}]
        extra = {"coupon_code": code} if code else {}
        self.send("o", "order_placed", ts, customer, order_id=f"o{self.n}",
                  cart_id=f"{customer}-k", lines=lines, total=total, **extra)  # fmt: skip

    def tick(self, ts: float) -> None:
        self.send("b", "product_viewed", ts, "zz", sku="x", category="y", price=1.0)

    def resolved(self) -> list[dict[str, Any]]:
        return [d for d in self.decisions if d.get("kind") == "cart_resolved"]


def _crm(targeting: bool, holdout: float = 0.0) -> CrmConfig:
    abandon = AbandonConfig(targeting=replace(ON, enabled=targeting))
    return CrmConfig(contact=ContactConfig(holdout_share=holdout), abandon=abandon)


def test_each_abandoned_cart_resolves_once_with_revenue_and_coupon_cost() -> None:
    shop = Shop(_crm(targeting=False))
    shop.cart(T0, "c1")
    shop.cart(T0, "c2")
    shop.tick(T0 + 2 * DAY)  # both get the reminder and the 15% coupon
    code = next(c["code"] for c in shop.coupons if c["customer_id"] == "c1" and c["code"])
    shop.order(T0 + 3 * DAY, "c1", 120.0, code)  # recovered with the coupon
    shop.tick(T0 + 9 * DAY)  # c2's window closes unrecovered
    rows = {r["customer_id"]: r for r in shop.resolved()}
    assert len(shop.resolved()) == 2
    assert (rows["c1"]["recovered"], rows["c1"]["revenue"], rows["c1"]["coupon_cost"]) == (
        True, 120.0, 18.0,
    )  # fmt: skip
    assert (rows["c2"]["recovered"], rows["c2"]["coupon_sent"]) == (False, True)
    assert "uplift_learned" not in shop.outcomes  # targeting off: nothing is taught
    shop.tick(T0 + 20 * DAY)
    assert len(shop.resolved()) == 2


def test_with_targeting_every_resolution_teaches_and_coupons_record_the_prediction() -> None:
    shop = Shop(_crm(targeting=True, holdout=0.5))
    learners = shop.processor.learners
    customers = [f"c{i}" for i in range(60)]
    for i, c in enumerate(customers):
        shop.cart(T0 + i, c)
    shop.tick(T0 + 2 * DAY)
    incentives = [c for c in shop.coupons if c["stage"] == "coupon"]
    assert incentives and all(
        c["reason"]["inputs"]["targeting"] == "rule_fallback" for c in incentives
    )
    shop.tick(T0 + 9 * DAY)
    assert shop.outcomes.count("uplift_learned") == len(shop.resolved()) == 60
    assert sum(learners.uplift.seen.values()) == 60
    # Treated = a coupon was sent (the treatment arm); the holdout's carts are the control.
    sent = sum(1 for r in shop.resolved() if r["coupon_sent"])
    assert 0 < sent < 60 and learners.uplift.seen["treated"] == sent
    # The learner's state is checkpointed as data and restored.
    restored, _ = checkpoint.load(checkpoint.dump_model(learners), [], like=Learners())
    x = {"log_cart_value": 4.6, "returning": 0.0}
    assert restored.uplift.predict_one(x) == learners.uplift.predict_one(x)
    assert restored.uplift.seen == learners.uplift.seen


def test_lift_from_rows_uses_newcombe_for_rates_and_counts_each_arm() -> None:
    rng = random.Random(3)
    rows = []
    for i in range(400):
        arm = "holdout" if i % 4 == 0 else "treatment"
        recovered = rng.random() < (0.3 if arm == "treatment" else 0.15)
        rows.append({"customer_id": f"c{i}", "cart_id": f"k{i}", "arm": arm,
                     "recovered": recovered, "revenue": 80.0 if recovered else 0.0,
                     "coupon_sent": arm == "treatment", "coupon_cost": 8.0 if recovered and
                     arm == "treatment" else 0.0})  # fmt: skip
    out = lift_from_rows(rows, resamples=300)["cart"]
    t, h = out["treatment"], out["holdout"]
    expected = newcombe_diff(t["recovered"], t["carts"], h["recovered"], h["carts"]).as_dict()
    assert out["difference"]["recovery_rate"] == expected
    rev = out["difference"]["revenue_per_abandoned_cart"]
    assert rev["estimate"] == pytest.approx(80 * (t["recovered"] / 300 - h["recovered"] / 100), abs=1e-3)
    assert rev["ci_low"] < rev["estimate"] < rev["ci_high"]
    net = out["difference"]["incremental_revenue_minus_coupon_cost"]["estimate"]
    assert net == pytest.approx(
        out["difference"]["incremental_revenue"]["estimate"] - t["coupon_cost"], abs=0.01
    )


def test_targeting_is_a_rules_file_switch() -> None:
    assert not rules_from({}).abandon.targeting.enabled
    assert rules_from({"coupon": {"targeting": "uplift"}}).abandon.targeting.enabled
    with pytest.raises(RulesError, match=r"coupon\.targeting"):
        rules_from({"coupon": {"targeting": "always"}})


def test_planted_effect_in_a_closed_loop_shop_is_recovered_by_the_readout() -> None:
    crm = CrmConfig(contact=ContactConfig(holdout_share=0.5))
    out = run_planted(8000, seed=5, customers=800, lift=0.6, crm=crm, resamples=300)
    assert out["planted_orders"] > 0 and out["planted_itt_per_cart"] > 0
    assert out["readout_covers_planted"] is True
    none = run_planted(8000, seed=5, customers=800, lift=0.0, crm=crm, resamples=300)
    assert none["planted_orders"] == 0
    assert out["lift"]["cart"]["difference"]["recovery_rate"]["estimate"] > (
        none["lift"]["cart"]["difference"]["recovery_rate"]["estimate"]
    )
