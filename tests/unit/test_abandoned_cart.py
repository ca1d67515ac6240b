"""Abandoned carts on a simulated clock: the whole Processor path, no broker."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from streamcrm.contract import validator
from streamcrm.events import format_ts
from streamcrm.ingest import BatchResult, Processor, Record
from streamcrm.policies.abandoned_cart import AbandonConfig, Stage
from streamcrm.policies.contact import ContactConfig, in_holdout
from streamcrm.state import CustomerState

T0 = 1_790_000_000.0
MIN, HOUR, DAY = 60.0, 3600.0, 86400.0
TOPICS = {"b": "browse", "c": "cart", "o": "order"}
KIND_TOPIC = {"browse": "b", "cart": "c", "order": "o"}
TYPE_KIND = {
    "cart_item_added": "cart",
    "cart_item_removed": "cart",
    "cart_cleared": "cart",
    "checkout_started": "cart",
    "order_placed": "order",
    "consent_updated": "order",
    "product_viewed": "browse",
}
NO_HOLDOUT = ContactConfig(holdout_share=0.0)


class Shop:
    """A customer's events fed through a Processor, with its table in a dict."""

    def __init__(
        self,
        config: AbandonConfig | None = None,
        clock: str = "event",
        contact: ContactConfig = NO_HOLDOUT,
    ) -> None:
        self.processor = Processor(
            TOPICS, abandon=config or AbandonConfig(), contact=contact, clock=clock
        )
        self.table: dict[str, CustomerState] = {}
        self.coupons: list[dict[str, Any]] = []
        self.outcomes: list[str] = []
        self.offset = 0

    def send(
        self, type_: str, ts: float, customer: str = "c1", event_id: str | None = None, **body: Any
    ) -> None:
        self.offset += 1
        event = {
            "event_id": event_id or f"e{self.offset}",
            "type": type_,
            "customer_id": customer,
            "ts": format_ts(ts),
            "channel": "web",
            **body,
        }
        record = Record(
            KIND_TOPIC[TYPE_KIND[type_]], 0, self.offset, customer.encode(), orjson.dumps(event)
        )
        self._take(self.processor.process([record], self.table.get, now=ts))

    def add(
        self, ts: float, sku: str = "s1", price: float = 100.0, cart: str = "k1", **kw: Any
    ) -> None:
        self.send("cart_item_added", ts, cart_id=cart, sku=sku, qty=1, unit_price=price, **kw)

    def order(self, ts: float, cart: str = "k1", total: float = 100.0, **kw: Any) -> None:
        lines = [{"sku": "s1", "qty": 1, "unit_price": total}]
        self.send(
            "order_placed",
            ts,
            order_id=f"o{self.offset}",
            cart_id=cart,
            lines=lines,
            total=total,
            **kw,
        )

    def tick(self, ts: float, customer: str = "zz") -> None:
        """Event time moves on: another customer's view advances the watermark."""
        self.send("product_viewed", ts, customer=customer, sku="x", category="y", price=1.0)

    def _take(self, result: BatchResult) -> None:
        for cid, (_, state) in result.states.items():
            self.table[cid] = state
        self.coupons += [coupon for _, coupon in result.coupons]
        self.outcomes += list(result.outcomes.elements())

    def stages(self) -> list[str]:
        return [c["stage"] for c in self.coupons]


def test_add_then_silence_gives_a_reminder_then_a_coupon() -> None:
    shop = Shop()
    shop.add(T0)
    shop.tick(T0 + 29 * MIN)
    assert "cart_abandoned" not in shop.outcomes
    shop.tick(T0 + 31 * MIN)
    assert shop.outcomes.count("cart_abandoned") == 1 and shop.coupons == []
    shop.tick(T0 + 2 * DAY)
    assert shop.stages() == ["reminder", "coupon"]
    reminder, coupon = shop.coupons
    assert reminder["code"] is None and reminder["discount"]["kind"] == "none"
    assert coupon["code"] and coupon["discount"] == {"kind": "percent", "percent": 15.0}
    assert coupon["ts"] == format_ts(T0 + DAY)  # decided at the due time, not when noticed
    for event in shop.coupons:
        validator("coupon_issued").validate(event)


def test_add_then_order_gives_nothing() -> None:
    shop = Shop()
    shop.add(T0)
    shop.order(T0 + 10 * MIN)
    shop.tick(T0 + 3 * DAY)
    assert shop.coupons == [] and "cart_abandoned" not in shop.outcomes


def test_an_order_between_stages_stops_the_next_stage() -> None:
    shop = Shop()
    shop.add(T0)
    shop.tick(T0 + 2 * HOUR)
    shop.order(T0 + 3 * HOUR)
    shop.tick(T0 + 3 * DAY)
    assert shop.stages() == ["reminder"]
    assert "recovered_treated" in shop.outcomes


def test_a_cleared_cart_fires_nothing() -> None:
    shop = Shop()
    shop.add(T0)
    shop.send("cart_cleared", T0 + 5 * MIN, cart_id="k1")
    shop.tick(T0 + 3 * DAY)
    assert shop.coupons == []


def test_a_cart_change_resets_the_clock() -> None:
    shop = Shop()
    shop.add(T0)
    shop.add(T0 + 25 * MIN, sku="s2")
    shop.tick(T0 + 40 * MIN)
    assert "cart_abandoned" not in shop.outcomes  # 15 minutes since the last change
    shop.tick(T0 + 56 * MIN)
    assert shop.outcomes.count("cart_abandoned") == 1


def test_stages_fire_in_order_once_each_and_re_arm_on_a_new_version() -> None:
    config = AbandonConfig(
        stages=(
            Stage("nudge", HOUR, False),
            Stage("coupon", 2 * DAY, True),
            Stage("last", 5 * DAY, True),
        ),
    )
    shop = Shop(config, contact=ContactConfig(holdout_share=0.0, max_per_day=5, max_per_week=10))
    shop.add(T0)
    for day in range(1, 8):
        shop.tick(T0 + day * DAY)
    assert shop.stages() == ["nudge", "coupon", "last"]
    shop.add(T0 + 8 * DAY, sku="s2")  # a new cart version: the stages may fire again
    shop.tick(T0 + 9 * DAY)
    assert shop.stages() == ["nudge", "coupon", "last", "nudge"]
    assert len({c["coupon_id"] for c in shop.coupons}) == 4
    assert shop.outcomes.count("cart_abandoned") == 1  # one cart, abandoned once


def test_frequency_caps_per_day_and_week() -> None:
    # Plain reminders: an incentive would be given once per cart anyway (see below).
    config = AbandonConfig(
        stages=(Stage("nudge", HOUR, False),),
    )
    shop = Shop(config, contact=ContactConfig(holdout_share=0.0, max_per_day=1, max_per_week=3))
    for i in range(5):  # a new cart version every 12 h, each abandoned
        shop.add(T0 + i * 12 * HOUR, sku=f"s{i}")
        shop.tick(T0 + i * 12 * HOUR + 2 * HOUR)
    sent_days = [(shop.coupons.index(c), c["ts"]) for c in shop.coupons]
    assert len(shop.coupons) == 3, sent_days  # 0 h, 24 h, 48 h: 12 h and 36 h hit the daily cap
    assert shop.outcomes.count("suppressed_cap_24h") == 2
    shop.add(T0 + 72 * HOUR, sku="s9")
    shop.tick(T0 + 80 * HOUR)
    assert len(shop.coupons) == 3 and "suppressed_cap_7d" in shop.outcomes


def test_no_consent_no_message_and_consent_can_come_back() -> None:
    shop = Shop()
    shop.send("consent_updated", T0 - 1, marketing=False)
    shop.add(T0)
    shop.tick(T0 + 2 * DAY)
    assert shop.coupons == [] and shop.outcomes.count("suppressed_no_consent") == 2
    shop.send("consent_updated", T0 + 2 * DAY, marketing=True)
    shop.add(T0 + 2 * DAY + 1, sku="s2")
    shop.tick(T0 + 4 * DAY)
    assert shop.stages() == ["reminder", "coupon"]


def test_consent_default_no_means_opt_in() -> None:
    shop = Shop(contact=ContactConfig(holdout_share=0.0, consent_default=False))
    shop.add(T0)
    shop.tick(T0 + 2 * DAY)
    assert shop.coupons == []


def test_holdout_is_recorded_not_sent_and_recoveries_are_split() -> None:
    policy = ContactConfig(holdout_share=0.5)
    customers = [f"c{i}" for i in range(40)]
    held = [c for c in customers if in_holdout(c, 0.5)]
    assert 5 < len(held) < 35  # the hash splits the population
    shop = Shop(contact=policy)
    for c in customers:
        shop.add(T0, customer=c, cart=f"k-{c}")
    shop.tick(T0 + 2 * HOUR)
    for c in customers:
        shop.order(T0 + 3 * HOUR, customer=c, cart=f"k-{c}")
    assert {c["customer_id"] for c in shop.coupons} == set(customers) - set(held)
    assert shop.outcomes.count("holdout") == len(held)
    assert shop.outcomes.count("recovered_holdout") == len(held)
    assert shop.outcomes.count("recovered_treated") == len(customers) - len(held)


def test_redeemed_when_the_order_carries_the_code() -> None:
    shop = Shop()
    shop.add(T0)
    shop.tick(T0 + 2 * DAY)
    code = shop.coupons[-1]["code"]
    shop.order(T0 + 3 * DAY, coupon_code=code)
    assert "redeemed" in shop.outcomes and "recovered_treated" in shop.outcomes
    assert shop.table["c1"].coupons_redeemed == 1


def test_an_order_after_the_attribution_window_is_not_a_recovery() -> None:
    shop = Shop()
    shop.add(T0)
    shop.tick(T0 + 2 * DAY)
    shop.order(T0 + 10 * DAY)
    assert not [o for o in shop.outcomes if o.startswith("recovered")]


def test_duplicate_events_do_not_double_count_or_re_fire() -> None:
    shop = Shop()
    shop.add(T0, event_id="same")
    shop.add(T0, event_id="same")  # redelivered
    shop.tick(T0 + 2 * DAY)
    shop.tick(T0 + 2 * DAY + 1)
    assert shop.table["c1"].cart is not None and shop.table["c1"].cart.units == 1
    assert shop.stages() == ["reminder", "coupon"]
    assert shop.outcomes.count("cart_started") == 1


def test_coupon_ids_are_deterministic_across_replays() -> None:
    def run() -> list[str]:
        shop = Shop()
        shop.add(T0)
        shop.tick(T0 + 2 * DAY)
        return [c["coupon_id"] for c in shop.coupons]

    assert run() == run()


def test_wall_clock_fires_on_sweep_and_rebuild_restores_deadlines() -> None:
    shop = Shop(clock="wall")
    shop.add(T0)  # processed at now=T0
    assert shop.coupons == []
    restored = Processor(TOPICS, contact=NO_HOLDOUT, clock="wall")
    restored.rebuild([(cid, 0, state) for cid, state in shop.table.items()])  # a restarted worker
    assert restored.next_due() == T0 + 30 * MIN
    result = restored.sweep(shop.table.get, now=T0 + 2 * DAY)
    assert [c["stage"] for _, c in result.coupons] == ["reminder", "coupon"]
    # Left: the close of the cart's attribution window (it resolves the cart, unrecovered).
    assert restored.next_due() == T0 + 30 * MIN + 7 * DAY
    result = restored.sweep(shop.table.get, now=T0 + 8 * DAY)
    resolved = [d["recovered"] for d in result.decisions if d.get("kind") == "cart_resolved"]
    assert resolved == [False]
    assert restored.next_due() is None


@pytest.mark.parametrize("share", [0.0, 0.1, 1.0])
def test_holdout_assignment_is_stable(share: float) -> None:
    assert [in_holdout(f"c{i}", share) for i in range(100)] == [
        in_holdout(f"c{i}", share) for i in range(100)
    ]


LOOSE_CAPS = ContactConfig(holdout_share=0.0, max_per_day=5, max_per_week=20)


def _codes(shop: Shop) -> list[str]:
    return [c["code"] for c in shop.coupons if c["code"]]


def test_an_edited_cart_gets_its_incentive_once_and_reminders_again() -> None:
    shop = Shop(contact=LOOSE_CAPS)
    shop.add(T0)
    shop.tick(T0 + 2 * DAY)
    shop.add(T0 + 2 * DAY + 1, sku="s2")  # a new version re-arms the stages
    shop.tick(T0 + 4 * DAY)
    assert shop.stages() == ["reminder", "coupon", "reminder", "coupon"]
    assert len(_codes(shop)) == 1
    assert shop.coupons[3]["discount"] == {"kind": "none", "percent": None}
    assert shop.coupons[3]["reason"]["rule"] == "reminder_stage"
    assert shop.outcomes.count("incentive_withheld_once_per_cart") == 1
    assert shop.outcomes.count("couponed") == 1 and shop.outcomes.count("reminded") == 3


def test_one_incentive_per_customer_in_the_window_then_again_after_it() -> None:
    shop = Shop(AbandonConfig(incentive_window=30 * DAY), contact=LOOSE_CAPS)
    shop.add(T0)
    shop.tick(T0 + 2 * DAY)
    shop.order(T0 + 2 * DAY + 10)
    shop.add(T0 + 10 * DAY, cart="k2")  # a second cart 10 days later: reminder only
    shop.tick(T0 + 12 * DAY)
    assert len(_codes(shop)) == 1
    assert shop.outcomes.count("incentive_withheld_once_per_customer_window") == 1
    shop.order(T0 + 12 * DAY + 10, cart="k2")
    shop.add(T0 + 40 * DAY, cart="k3")  # past the 30 days: an incentive again
    shop.tick(T0 + 42 * DAY)
    assert len(_codes(shop)) == 2
    assert shop.outcomes.count("incentive_withheld_once_per_customer_window") == 1


def test_the_window_is_configurable() -> None:
    shop = Shop(AbandonConfig(incentive_window=5 * DAY), contact=LOOSE_CAPS)
    shop.add(T0)
    shop.tick(T0 + 2 * DAY)
    shop.order(T0 + 2 * DAY + 10)
    shop.add(T0 + 10 * DAY, cart="k2")
    shop.tick(T0 + 12 * DAY)
    assert len(_codes(shop)) == 2
    assert not any(o.startswith("incentive_withheld") for o in shop.outcomes)


def test_a_held_out_would_be_incentive_counts_like_a_given_one() -> None:
    # Both arms must meet the same once-only rule, or the holdout sees more incentive stages.
    holdout = ContactConfig(holdout_share=1.0, max_per_day=5, max_per_week=20)
    shop = Shop(contact=holdout)
    shop.add(T0)
    shop.tick(T0 + 2 * DAY)
    shop.add(T0 + 2 * DAY + 1, sku="s2")
    shop.tick(T0 + 4 * DAY)
    assert shop.coupons == []
    assert shop.outcomes.count("incentive_withheld_once_per_cart") == 1
    assert shop.outcomes.count("holdout") == 4


def test_holdout_would_be_sends_count_against_the_caps() -> None:
    # Same shop and caps for a treated and a held-out customer: the same decisions are
    # capped, so the arms differ only in whether the message goes out.
    stages = (Stage("nudge", HOUR, False),)
    outcomes = {}
    for share in (0.0, 1.0):
        config = AbandonConfig(stages=stages)
        shop = Shop(config, contact=ContactConfig(holdout_share=share, max_per_day=1))
        for i in range(4):  # a new cart version every 12 h
            shop.add(T0 + i * 12 * HOUR, sku=f"s{i}")
            shop.tick(T0 + i * 12 * HOUR + 2 * HOUR)
        outcomes[share] = shop.outcomes
    assert outcomes[0.0].count("suppressed_cap_24h") == 2
    assert outcomes[1.0].count("suppressed_cap_24h") == 2
    assert outcomes[0.0].count("reminded") == outcomes[1.0].count("holdout") == 2


def test_itt_counts_every_abandoned_cart_by_arm_whether_or_not_it_was_messaged() -> None:
    from streamcrm.experiments.lift import lift_readout

    policy = ContactConfig(holdout_share=0.5)
    customers = [f"c{i}" for i in range(60)]
    held = {c for c in customers if in_holdout(c, 0.5)}
    shop = Shop(contact=policy)
    for c in customers:
        if c.endswith("3"):  # no consent: never messaged, still in its arm
            shop.send("consent_updated", T0 - 1, customer=c, marketing=False)
        shop.add(T0, customer=c, cart=f"k-{c}")
    shop.tick(T0 + 2 * HOUR)
    # Treated customers recover when their index is even, held-out ones when divisible by 3.
    recovers = [c for c in customers if int(c[1:]) % (3 if c in held else 2) == 0]
    for c in recovers:
        shop.order(T0 + 3 * HOUR, customer=c, cart=f"k-{c}")
    counts = {o: shop.outcomes.count(o) for o in set(shop.outcomes)}
    treated_recovered = sum(1 for c in recovers if c not in held)
    assert counts["itt_abandoned_holdout"] == len(held)
    assert counts["itt_abandoned_treatment"] == len(customers) - len(held)
    assert counts["itt_recovered_treatment"] == treated_recovered
    assert counts.get("itt_recovered_holdout", 0) == len(recovers) - treated_recovered
    readout = lift_readout(counts)
    expected = treated_recovered / (len(customers) - len(held)) - (
        len(recovers) - treated_recovered
    ) / len(held)
    assert readout["difference"]["estimate"] == pytest.approx(expected, abs=1e-6)
    assert readout["difference"]["ci_low"] < expected < readout["difference"]["ci_high"]
