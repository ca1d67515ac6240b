"""Flash sales on a simulated clock: announcements, the interest index, each customer's notices."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamcrm.contract import schema_dir, validator
from streamcrm.events import Event, InvalidEvent, format_ts
from streamcrm.policies.flash_sale import (
    OUTCOMES,
    Campaign,
    FlashConfig,
    Shopping,
    decode_announcement,
    due,
    enroll,
    on_due,
)
from streamcrm.policies.flash_sale_index import InterestIndex

H = 3600.0
CFG = FlashConfig()
SALE = Campaign("fs1", ("s1", "s2"), ("shoes",), 100 * H, 104 * H, 30.0, (("platinum", 2 * H), ("gold", H)))


NOTHING = Shopping()


def fire_all(state: Any, until: float, shopping: Shopping = NOTHING) -> tuple[Any, list[Any], Counter[str]]:
    emitted: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    while (at := due(state, CFG)) is not None and at <= until:
        state, out, outcomes = on_due(state, at, CFG, shopping)
        emitted += out
        counts.update(outcomes)
    return state, emitted, counts


def test_the_example_announcement_decodes_and_bad_ones_carry_reasons() -> None:
    raw = (schema_dir() / "examples" / "flash_sale_announced.json").read_bytes()
    campaign = decode_announcement(raw, key=b"fs-2026-11-03")
    assert campaign.early_for("platinum") == 7200 and campaign.early_for("silver") is None
    body = orjson.loads(raw)
    cases = {
        "key_mismatch": (raw, b"other"),
        "schema_violation": (orjson.dumps({**body, "skus": [], "categories": []}), b"fs-2026-11-03"),
        "invalid_json": (b"{", b"fs-2026-11-03"),
        "not_an_object": (b"[1]", b"fs-2026-11-03"),
    }
    for reason, (value, key) in cases.items():
        with pytest.raises(InvalidEvent) as info:
            decode_announcement(value, key=key)
        assert info.value.reason == reason
    backwards = orjson.dumps({**body, "ends_at": body["starts_at"]})
    with pytest.raises(InvalidEvent, match="ends_at must be after starts_at"):
        decode_announcement(backwards, key=b"fs-2026-11-03")


def test_tiers_hear_early_others_at_the_start_and_last_chance_needs_the_cart() -> None:
    interest = ("carted", ("s1",))
    for tier, first, at in (("platinum", "early_access", 98 * H), ("gold", "early_access", 99 * H),
                            ("silver", "starts_now", 100 * H), (None, "starts_now", 100 * H)):  # fmt: skip
        state, _, _ = enroll(None, "c1", SALE, tier, interest, CFG, now=90 * H)
        state, out, counts = fire_all(state, 200 * H, Shopping(cart=frozenset({"s1"})))
        assert out[0]["notice"] == first
        assert out[0]["ts"] == format_ts(at)
        assert [o["notice"] for o in out][1:] == ["last_chance"] and out[1]["ts"] == format_ts(103 * H)
        for body in out:
            validator("flash_sale_notification").validate(body)
        assert due(state, CFG) is None and set(counts) <= set(OUTCOMES)
    state, _, _ = enroll(None, "c1", SALE, "gold", interest, CFG, now=90 * H)
    _, out, counts = fire_all(state, 200 * H, Shopping(viewed=frozenset({"s9"})))
    assert [o["notice"] for o in out] == ["early_access"] and counts["flash_last_chance_skipped"] == 1


def test_late_announcements_and_replacements() -> None:
    state, _, _ = enroll(None, "c1", SALE, "platinum", ("viewed", ("shoes",)), CFG, now=101 * H)
    _, out, _ = fire_all(state, 101 * H)
    assert [o["notice"] for o in out] == ["starts_now"]  # started already: no early access
    assert enroll(None, "c1", SALE, "gold", ("viewed", ("s1",)), CFG, now=104 * H)[2] == ("flash_enroll_after_end",)
    state, _, _ = enroll(None, "c1", SALE, "gold", ("viewed", ("s1",)), CFG, now=0.0)
    moved = Campaign("fs1", ("s1",), (), 200 * H, 201 * H, 20.0, ())
    state, _, _ = enroll(state, "c1", moved, "gold", ("viewed", ("s1",)), CFG, now=1.0)
    assert [n.due_at for n in state.pending] == [200 * H]  # replaced; a 1 h sale has no last chance
    _, out, _ = fire_all(state, 500 * H)
    assert len(out) == 1


def test_at_most_max_campaigns_pending_and_expired_notices_are_dropped() -> None:
    cfg = FlashConfig(max_campaigns=3)
    state = None
    for i in range(5):
        c = Campaign(f"fs{i}", ("s1",), (), (10 + i) * H, (20 - i) * H, 10.0, ())
        state, _, outcomes = enroll(state, "c1", c, None, ("viewed", ("s1",)), cfg, now=0.0)
    assert state is not None and {n.campaign_id for n in state.pending} == {"fs2", "fs3", "fs4"}
    assert outcomes == ("flash_enrolled", "flash_campaign_dropped_over_cap")
    _, out, counts = on_due(state, 100 * H, cfg, Shopping())
    assert out == () and counts.count("flash_notice_expired") == len(state.pending)


def ev(kind: str, customer: str, ts: float, **body: Any) -> Event:
    return Event(f"{customer}{ts}", kind, customer, ts, "web", None, body)


def test_the_index_keeps_the_strongest_recent_interest_within_its_bounds() -> None:
    index = InterestIndex(horizon_s=10 * H, per_item=2, max_items=3)
    index.record(ev("product_viewed", "c1", 0.0, sku="s1", category="shoes", price=1.0))
    index.record(ev("cart_item_added", "c1", 1.0, cart_id="k", sku="s1", qty=1, unit_price=1.0))
    index.record(ev("product_viewed", "c1", 2.0, sku="s1", category="shoes", price=1.0))
    found = index.interested(skus=("s1",), categories=("shoes",), now=3.0)
    assert found == {"c1": ("carted", ("s1", "shoes"))}
    assert index.interested(skus=("s1",), categories=(), now=20 * H) == {}  # past the horizon
    for c in ("c2", "c3", "c4"):
        index.record(ev("product_viewed", c, 21 * H, sku="s2", category="bags", price=1.0))
    assert set(index.interested(skus=("s2",), categories=(), now=21 * H)) == {"c3", "c4"}
    lines = [{"sku": "s3", "qty": 1, "unit_price": 1.0}, {"sku": "s4", "qty": 1, "unit_price": 1.0}]
    index.record(ev("order_placed", "c5", 22 * H, order_id="o", total=2.0, lines=lines))
    assert index.size()[0] == 3 and index.dropped > 0
    assert index.interested(skus=("s4",), categories=(), now=22 * H) == {"c5": ("bought", ("s4",))}
    index.forget("c5")
    assert index.interested(skus=("s4",), categories=(), now=22 * H) == {}


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.floats(0, 50 * H), st.floats(0.5 * H, 10 * H),
                       st.sampled_from(["platinum", "gold", None]), st.floats(0, 60 * H)),
             min_size=1, max_size=12),
)  # fmt: skip
def test_any_schedule_sends_each_notice_once_within_its_sale(plan: list[Any]) -> None:
    cfg = FlashConfig(max_campaigns=2)
    state, sent = None, []
    clock = 0.0
    for cid, start, length, tier, gap in sorted(plan, key=lambda p: p[4]):
        clock = max(clock, gap)
        state, _, _ = fire_all_cfg(state, clock, cfg, sent)
        sale = Campaign(f"fs{cid}", ("s1",), (), start, start + length, 15.0, (("platinum", 2 * H), ("gold", H)))
        state, _, _ = enroll(state, "c1", sale, tier, ("carted", ("s1",)), cfg, now=clock)
        assert state is None or len({n.campaign_id for n in state.pending}) <= 2
    fire_all_cfg(state, 1e9, cfg, sent)
    assert len({b["event_id"] for b in sent}) == len(sent)
    for body in sent:
        validator("flash_sale_notification").validate(body)
    assert all(b["ts"] < b["ends_at"] for b in sent)


def fire_all_cfg(state: Any, until: float, cfg: FlashConfig, sent: list[Any]) -> tuple[Any, None, None]:
    while (at := due(state, cfg)) is not None and at <= until:
        state, out, _ = on_due(state, at, cfg, Shopping(cart=frozenset({"s1"})))
        sent += out
    return state, None, None
