"""Buy again (learning/rebuy.py): recent purchases take a slot only on clear evidence,
learned at the offers' evaluation moments; wired into make_offer / evaluate."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamcrm.contract import validator
from streamcrm.events import Event
from streamcrm.learning.candidates import CandidateStats
from streamcrm.learning.offer_gate import OfferGate
from streamcrm.learning.ranking import OfferRanker
from streamcrm.learning.rebuy import DEPTH, SLOTS, RebuyRates, recent_purchases
from streamcrm.learning.river_state import BadState
from streamcrm.policies import next_best_offer as nbo
from streamcrm.state import Cart, CartLine, CustomerState, View

SKUS = st.text("abcdefgh", min_size=1, max_size=2)
MOMENT = st.tuples(
    st.lists(SKUS, max_size=12, unique=True),  # the fallback's list
    st.lists(SKUS, max_size=4, unique=True),  # recent purchases
    st.sets(SKUS, min_size=1, max_size=2),  # what the customer added or bought
)


def _taught(moments: list[tuple[list[str], list[str], set[str]]]) -> RebuyRates:
    r = RebuyRates()
    for base, rebuy, targets in moments:
        r.update(base=base, rebuy=rebuy, targets=targets)
    return r


@given(st.lists(MOMENT, max_size=40), st.lists(SKUS, max_size=12, unique=True),
       st.lists(SKUS, max_size=4, unique=True))  # fmt: skip
def test_a_merge_keeps_both_orders_and_only_their_items(moments, base, bought) -> None:  # type: ignore[no-untyped-def]
    merged = _taught(moments).merge(base, bought, 10)
    assert len(merged) == len(set(merged))
    assert set(merged) <= set(base) | set(bought[:DEPTH])
    assert [s for s in merged if s in base] == base[: len([s for s in merged if s in base])]
    extra = [s for s in merged if s not in base]
    assert extra == [s for s in bought if s in extra]
    # A list keeps its length; only a list shorter than the cut grows (up to the cut).
    assert len(merged) == len(base) or len(base) < len(merged) <= 10


@given(st.lists(MOMENT, max_size=40), st.lists(SKUS, max_size=12, unique=True),
       st.lists(SKUS, max_size=4, unique=True))  # fmt: skip
def test_no_repeat_ever_seen_never_changes_an_offer(moments, base, bought) -> None:  # type: ignore[no-untyped-def]
    r = _taught([(b, p, t - set(p)) for b, p, t in moments])
    assert r.merge(base, bought, 10) is base


def test_clear_evidence_moves_the_purchase_up_and_noise_does_not() -> None:
    base = ["v0", "v1", "v2", "v3", "v4", "v5"]
    r = RebuyRates()
    r.update(base=base, rebuy=["p"], targets={"p"})
    assert r.merge(base, ["p"], 5) is base  # one repeat is not evidence
    for _ in range(10):
        r.update(base=base, rebuy=["p"], targets={"p"})
    assert r.merge(base, ["p"], 5) == ["p", "v0", "v1", "v2", "v3", "v4"]
    # As often the purchase as slot 3: not above it, but above slot 4 (never the target).
    even = _taught([(base, ["p"], {"p" if i % 50 == 0 else "v3" if i % 50 == 1 else "zz"})
                    for i in range(2_000)])  # fmt: skip
    assert even.merge(base, ["p"], 5) == ["v0", "v1", "v2", "v3", "p", "v4"]


def test_a_purchase_must_beat_every_deeper_slot_too() -> None:
    # Slot 1 never hits, slot 3 often: a purchase as good as slot 3 stays below it.
    base = ["v0", "v1", "v2", "v3"]
    moments = [(base, ["p"], {"v0"})] * 60 + [(base, ["p"], {"v3"})] * 30
    moments += [(base, ["p"], {"p"})] * 30
    assert _taught(moments).merge(base, ["p"], 4) == ["v0", "v1", "v2", "v3"]


def test_moments_count_slots_and_ranks() -> None:
    r = RebuyRates()
    r.update(base=["a", "b"], rebuy=[], targets={"b"})  # no purchases: not counted
    assert r.moments == 0
    r.update(base=["a", "b"], rebuy=["x", "y"], targets={"b"})
    r.update(base=["a", "b"], rebuy=["x"], targets={"x"})
    assert (r.moments, r.slot_hits[:2], r.rank_moments[:2], r.rank_hits[:2]) == (
        2, [0, 1], [2, 1], [1, 0],
    )  # fmt: skip


@given(st.lists(MOMENT, max_size=30), st.lists(st.booleans(), max_size=30))
def test_another_workers_counts_add_as_if_seen_here(moments, here) -> None:  # type: ignore[no-untyped-def]
    one, a, b = RebuyRates(), RebuyRates(), RebuyRates()
    for (base, rebuy, targets), mine in zip(moments, here + [True] * len(moments), strict=False):
        one.update(base=base, rebuy=rebuy, targets=targets)
        (a if mine else b).update(base=base, rebuy=rebuy, targets=targets)
    a.merge_delta(b.export_delta())
    assert a.as_dict() == one.as_dict()
    assert b.export_delta() is None  # exported once


def test_the_gate_carries_the_rebuy_counts_to_other_workers() -> None:
    a, b = OfferGate(), OfferGate()
    a.rebuy.update(base=["v"], rebuy=["p"], targets={"p"})
    b.merge_delta(a.export_delta())
    assert b.rebuy.as_dict() == a.rebuy.as_dict() and b.examples == 0


@pytest.mark.parametrize("bad", [[], {"moments": 1}, {"moments": 1, "slot_hits": [0] * SLOTS,
                                 "rank_moments": [0] * DEPTH, "rank_hits": [0]}])  # fmt: skip
def test_a_bad_delta_is_refused(bad: object) -> None:
    with pytest.raises(BadState):
        RebuyRates().merge_delta(bad)


@given(st.lists(SKUS, max_size=10), st.sets(SKUS, max_size=3))
def test_recent_purchases_are_distinct_newest_first_and_not_in_the_cart(bought, cart) -> None:  # type: ignore[no-untyped-def]
    out = recent_purchases(bought, cart)
    expected = [s for i, s in enumerate(bought) if s not in cart and s not in bought[:i]]
    assert list(out) == expected[:DEPTH]


def _customer() -> tuple[CustomerState, CandidateStats, Event]:
    stats = CandidateStats()
    for i in range(8):
        stats.observe(f"v{i}", "cat", 10.0, ts=900.0, weight=1.0, recent=[])
    views = tuple(View(f"v{i}", "cat", 10.0, 1000.0 - i, 1) for i in range(8))
    cart = Cart("k", (CartLine("q", 1, 5.0),), 3, 990.0)
    state = CustomerState(
        "c1", 0.0, 1000.0, recent_views=views, recent_purchases=("q", "p", "q"), cart=cart
    )
    event = Event("e1", "product_viewed", "c1", 1000.0, "web", None,
                  {"sku": "v0", "category": "cat", "price": 10.0})  # fmt: skip
    return state, stats, event


def test_an_offer_serves_a_purchase_the_rates_favour_and_is_evaluated_on_it() -> None:
    state, stats, event = _customer()
    gate = OfferGate()
    for _ in range(15):
        gate.rebuy.update(base=[f"v{i}" for i in range(8)], rebuy=["p"], targets={"p"})
    config = nbo.OfferConfig(exploration=0.0, exploration_slots=0.0)
    new, body = nbo.make_offer(state, event, stats, OfferRanker(), config, gate)
    assert body is not None
    validator("next_best_offer").validate(body)
    first = body["items"][0]
    assert (first["sku"], first["reason"]) == ("p", "you bought this before")
    assert new.offer is not None and dict(new.offer.eval_lists)[nbo.REBUY] == ("p",)
    assert "p" not in dict(new.offer.eval_lists)["fallback"]  # the gate's orders stay apart
    cart_add = Event("e2", "cart_item_added", "c1", 1100.0, "web", None,
                     {"sku": "p", "cart_id": "k", "qty": 1, "unit_price": 5.0})  # fmt: skip
    _, outcomes = nbo.evaluate(new, cart_add, stats, gate)
    assert "model_hit_at_5" in outcomes and not any("rebuy" in o for o in outcomes)
    assert gate.rebuy.moments == 16 and gate.rebuy.rank_hits[0] == 16


def test_without_evidence_the_offer_is_the_served_order() -> None:
    state, stats, event = _customer()
    config = nbo.OfferConfig(exploration=0.0, exploration_slots=0.0)
    _, with_gate = nbo.make_offer(state, event, stats, OfferRanker(), config, OfferGate())
    _, without = nbo.make_offer(state, event, stats, OfferRanker(), config, None)
    assert with_gate is not None and without is not None
    assert [i["sku"] for i in with_gate["items"]] == [i["sku"] for i in without["items"]]


@given(st.lists(MOMENT, max_size=20))
def test_the_counts_survive_a_checkpoint(moments) -> None:  # type: ignore[no-untyped-def]
    taught, back = _taught(moments), RebuyRates()
    back.restore(taught.as_dict())
    assert back.as_dict() == taught.as_dict()
    back.restore(None)  # a checkpoint written before the counts: nothing changes
    assert back.as_dict() == taught.as_dict()
