"""Coupon-abuse flags on a simulated clock: features, flag, block, expiry, clear; the detector."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streamcrm.contract import validator
from streamcrm.events import Event, decode
from streamcrm.learning.anomaly import FEATURES, AnomalyDetector
from streamcrm.policies import coupon_abuse as abuse
from streamcrm.synthetic import generate

H, DAY = 3600.0, 86_400.0
CFG = abuse.AbuseConfig()


class Fixed:
    """A scorer that gives every customer the same score."""

    def __init__(self, score: float, ready: bool = True) -> None:
        self.score, self.ready = score, ready

    def score_one(self, x: dict[str, float]) -> float:
        return self.score

    def drivers(self, x: dict[str, float]) -> list[dict[str, Any]]:
        return [{"feature": "abandoned_carts_7d", "value": x["abandoned_carts_7d"], "mean": 0.4, "z": 3.0}]


def ev(kind: str, ts: float, **body: Any) -> Event:
    return Event(f"{kind}-{ts}", kind, "c1", ts, "web", None, body)


def cart(ts: float, cid: str) -> Event:
    return ev("cart_item_added", ts, cart_id=cid, sku="s1", qty=1, unit_price=20.0)


def order(ts: float, oid: str, total: float, cid: str | None = None, coupon: bool = False) -> Event:
    body: dict[str, Any] = {"order_id": oid, "lines": [], "total": total}
    if cid:
        body["cart_id"] = cid
    if coupon:
        body["coupon_code"] = "SC-X"
    return ev("order_placed", ts, **body)


def feed(events: list[Event], scorer: Any = None, cfg: abuse.AbuseConfig = CFG) -> tuple[Any, list[Any], list[str]]:
    state, emitted, outcomes = None, [], []
    for event in events:
        if (at := abuse.due(state, cfg)) is not None and at <= event.ts:
            state, _, named = abuse.on_due(state, event.ts, cfg)
            outcomes += named
        state, out, named = abuse.on_event(state, event, cfg, scorer=scorer)
        emitted += out
        outcomes += named
    return state, emitted, outcomes


def test_features_count_abandoned_carts_coupon_orders_cancels_and_spikes() -> None:
    events = [cart(i * 10 * H, f"k{i}") for i in range(5)]
    events += [order(41 * H, "o1", 20.0, "k4", coupon=True), order(42 * H, "o2", 100.0)]
    events += [ev("order_cancelled", 43 * H, order_id="o1"), ev("order_cancelled", 44 * H, order_id="o2")]
    state, _, outcomes = feed(events)
    x = abuse.features(state, 44 * H)
    assert x == {"coupon_redemptions_7d": 1.0, "cancels_after_coupon_30d": 1.0,
                 "order_value_ratio": 5.0, "abandoned_carts_7d": 4.0}  # fmt: skip
    assert outcomes.count("abuse_scoring_moment") == 9
    later = abuse.features(state, 44 * H + 8 * DAY)  # the 7-day windows pass
    assert later["coupon_redemptions_7d"] == later["abandoned_carts_7d"] == 0.0
    assert later["cancels_after_coupon_30d"] == 1.0
    carts_only, _, _ = feed(events[:5])
    fresh = abuse.features(carts_only, 40 * H + 0.5 * H)  # k4 idle < 1 h: not abandoned yet
    assert fresh["abandoned_carts_7d"] == 4.0
    assert abuse.features(carts_only, 41 * H)["abandoned_carts_7d"] == 5.0


def test_a_flag_blocks_incentives_until_it_expires() -> None:
    state, emitted, outcomes = feed([cart(0.0, "k1"), cart(H, "k2")], scorer=Fixed(0.99))
    assert len(emitted) == 1 and outcomes.count("anomaly_flagged") == 1  # no second flag while set
    validator("anomaly_flagged").validate(emitted[0])
    assert abuse.blocks_incentives(state, 13 * DAY) and not abuse.blocks_incentives(state, 14 * DAY)
    assert abuse.due(state, CFG) == 14 * DAY
    state, _, outcomes = feed([cart(0.0, "k1"), cart(15 * DAY, "k2")], scorer=Fixed(0.99))
    assert outcomes.count("anomaly_flag_expired") == 1 and outcomes.count("anomaly_flagged") == 2


def test_below_threshold_or_a_cold_model_flags_nobody() -> None:
    _, emitted, _ = feed([cart(0.0, "k1")], scorer=Fixed(0.5))
    assert emitted == []
    _, emitted, _ = feed([cart(0.0, "k1")], scorer=Fixed(0.99, ready=False))
    assert emitted == []


def test_clearing_lifts_the_block_and_holds_off_re_flagging_for_the_grace() -> None:
    s, out, _ = feed([cart(0.0, "k1")], scorer=Fixed(0.99))
    flag_id = out[0]["flag_id"]
    s, _, named = abuse.on_event(s, ev("customer_flag_cleared", H, flag_id="other", reason="x"), CFG)
    assert named == ("anomaly_flag_clear_unmatched",) and abuse.blocks_incentives(s, H)
    s, _, named = abuse.on_event(s, ev("customer_flag_cleared", H, flag_id=flag_id, reason="x"), CFG)
    assert named == ("anomaly_flag_cleared",) and not abuse.blocks_incentives(s, H)
    s, out, _ = abuse.on_event(s, cart(2 * H, "k2"), CFG, scorer=Fixed(0.99))
    assert out == ()  # within the grace
    s, out, _ = abuse.on_event(s, cart(8 * DAY, "k3"), CFG, scorer=Fixed(0.99))
    assert len(out) == 1


def test_real_detector_output_meets_the_schema_and_names_its_drivers() -> None:
    det = AnomalyDetector(window_size=50, warmup=100, seed=3)
    for i in range(300):
        det.learn_one({"coupon_redemptions_7d": float(i % 7 == 0), "cancels_after_coupon_30d": 0.0,
                       "order_value_ratio": 1.0, "abandoned_carts_7d": float(i % 2)})  # fmt: skip
    events = [cart(i * 6 * H, f"k{i}") for i in range(12)]
    _, emitted, _ = feed(events, scorer=det, cfg=abuse.AbuseConfig(threshold=0.9))
    assert emitted, "twelve carts in three days did not look anomalous"
    body = emitted[0]
    validator("anomaly_flagged").validate(body)
    assert body["drivers"][0]["feature"] == "abandoned_carts_7d" and set(body["features"]) == set(FEATURES)


def test_detector_is_seeded_and_scores_stay_in_range() -> None:
    def trained(seed: int) -> AnomalyDetector:
        det = AnomalyDetector(window_size=20, warmup=20, seed=seed)
        for i in range(100):
            det.learn_one({f: float((i * 7 + j) % 5) for j, f in enumerate(FEATURES)})
        return det

    x = {f: 1e9 for f in FEATURES}  # far past every limit: clipped, still in range
    assert trained(1).score_one(x) == trained(1).score_one(x)
    assert 0.0 <= trained(2).score_one(x) <= 1.0 and 0.0 <= trained(2).score_one({}) <= 1.0


def test_on_the_synthetic_shop_farmers_are_flagged_and_few_normal_customers_are() -> None:
    det = AnomalyDetector(seed=7)
    states: dict[str, Any] = {}
    flagged: set[str] = set()
    seen: set[str] = set()
    for r in generate(60_000, seed=5, customers=2000, farmer_share=0.02, coupon_share=0.08):
        event = decode(r.value, topic_kind=r.topic_kind, key=r.key)
        state, out, named = abuse.on_event(states.get(event.customer_id), event, CFG, scorer=det)
        states[event.customer_id] = state
        flagged |= {o["customer_id"] for o in out}
        if "abuse_scoring_moment" in named:
            seen.add(event.customer_id)
            det.learn_one(abuse.features(state, event.ts))
    farmers = {c for c in seen if c.startswith("f")}
    normal = seen - farmers
    assert len(flagged & farmers) >= 0.6 * len(farmers)
    assert len(flagged & normal) <= 0.01 * len(normal)


def _event(kind: str, ts: float, n: int) -> Event:
    if kind == "cart":
        return cart(ts, f"k{n}")
    if kind in ("order", "coupon_order"):
        return order(ts, f"o{n}", float(n), f"k{n}", coupon=kind == "coupon_order")
    if kind == "cancel":
        return ev("order_cancelled", ts, order_id=f"o{n}")
    return ev("customer_flag_cleared", ts, reason="r")


_KIND = st.sampled_from(["cart", "order", "coupon_order", "cancel", "clear"])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(_KIND, st.floats(0, 2 * DAY), st.integers(0, 40)), max_size=80))
def test_any_history_keeps_the_state_bounded_and_serialisable(steps: list[Any]) -> None:
    clock, events = 0.0, []
    for kind, gap, n in steps:
        clock += gap
        events.append(_event(kind, clock, n))
    state, emitted, outcomes = feed(events, scorer=Fixed(0.9 if len(steps) % 2 else 0.1))
    assert set(outcomes) <= set(abuse.OUTCOMES)
    for body in emitted:
        validator("anomaly_flagged").validate(body)
    if state is not None:
        assert max(len(state.carts), len(state.coupon_orders), len(state.coupon_cancels)) <= abuse.MAX_ITEMS
        assert abuse.AbuseState.from_dict(orjson.loads(orjson.dumps(state.to_dict()))) == state
        assert all(v >= 0 for v in abuse.features(state, clock).values())
