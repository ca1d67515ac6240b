"""Pure customer-state transitions on a simulated clock (no broker)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from streamcrm.events import Event
from streamcrm.state import CustomerState, Limits, apply

T0 = 1_700_000_000.0


def ev(event_id: str, type_: str, ts: float, customer: str = "c1", **body: Any) -> Event:
    return Event(event_id, type_, customer, ts, "web", None, {"type": type_, **body})


def run(*events: Event, limits: Limits | None = None) -> CustomerState:
    state = None
    for i, event in enumerate(events):
        state = apply(state, event, now=T0 + 10_000 + i, limits=limits or Limits()).state
    assert state is not None
    return state


def add(
    event_id: str, ts: float, sku: str = "s1", qty: int = 1, price: float = 10.0, cart: str = "k1"
) -> Event:
    return ev(event_id, "cart_item_added", ts, cart_id=cart, sku=sku, qty=qty, unit_price=price)


def test_first_event_creates_the_customer() -> None:
    state = run(ev("e1", "product_viewed", T0, sku="s1", category="shoes", price=50.0))
    assert (state.customer_id, state.first_seen, state.last_seen) == ("c1", T0, T0)
    assert [v.sku for v in state.recent_views] == ["s1"]
    assert state.events_applied == 1


def test_cart_lines_merge_by_sku_and_value_follows() -> None:
    state = run(
        add("e1", T0, "s1", 2, 10.0),
        add("e2", T0 + 1, "s2", 1, 5.5),
        add("e3", T0 + 2, "s1", 1, 10.0),
    )
    assert state.cart is not None
    assert {(line.sku, line.qty) for line in state.cart.lines} == {("s1", 3), ("s2", 1)}
    assert state.cart.value == 35.5
    assert state.cart.version == 3
    assert state.cart.last_activity == T0 + 2


def test_removing_more_than_present_drops_the_line() -> None:
    state = run(
        add("e1", T0, "s1", 2),
        add("e2", T0, "s2", 1),
        ev("e3", "cart_item_removed", T0 + 5, cart_id="k1", sku="s1", qty=5),
    )
    assert state.cart is not None
    assert [line.sku for line in state.cart.lines] == ["s2"]
    assert state.cart.version == 3


def test_checkout_resets_activity_but_not_version() -> None:
    state = run(add("e1", T0), ev("e2", "checkout_started", T0 + 60, cart_id="k1"))
    assert state.cart is not None
    assert (state.cart.version, state.cart.last_activity, state.cart.checkout_started_at) == (
        1,
        T0 + 60,
        T0 + 60,
    )


def test_order_counts_spend_and_closes_its_cart() -> None:
    state = run(
        add("e1", T0, price=20.0),
        ev(
            "e2",
            "order_placed",
            T0 + 100,
            order_id="o1",
            cart_id="k1",
            total=20.0,
            lines=[{"sku": "s1", "qty": 1, "unit_price": 20.0}],
        ),
    )
    assert (state.order_count, state.total_spend, state.cart, state.last_order_at) == (
        1,
        20.0,
        None,
        T0 + 100,
    )
    assert "k1" in state.closed_carts


def test_late_cart_event_for_an_ordered_cart_is_ignored() -> None:
    # The cart topic lagged behind the order topic: the add arrives after the order.
    order = ev(
        "e2",
        "order_placed",
        T0 + 100,
        order_id="o1",
        cart_id="k1",
        total=10.0,
        lines=[{"sku": "s1", "qty": 1, "unit_price": 10.0}],
    )
    state = run(order, add("e1", T0 + 50))
    assert state.cart is None
    assert state.last_seen == T0 + 100 and state.first_seen == T0 + 50


def test_cleared_cart_is_closed_and_a_new_cart_id_starts_fresh() -> None:
    state = run(
        add("e1", T0),
        ev("e2", "cart_cleared", T0 + 1, cart_id="k1"),
        add("e3", T0 + 2, cart="k2", price=3.0),
    )
    assert state.cart is not None
    assert (state.cart.cart_id, state.cart.value, state.cart.version) == ("k2", 3.0, 1)


def test_cancel_reverses_spend_once() -> None:
    placed = ev(
        "e1",
        "order_placed",
        T0,
        order_id="o1",
        total=80.0,
        lines=[{"sku": "s", "qty": 1, "unit_price": 80.0}],
    )
    cancel = ev("e2", "order_cancelled", T0 + 5, order_id="o1")
    cancel_again = ev("e3", "order_cancelled", T0 + 6, order_id="o1")
    state = run(placed, cancel, cancel_again)
    assert (state.order_count, state.total_spend) == (0, 0.0)
    assert state.recent_orders[0].cancelled


def test_same_order_under_two_event_ids_counts_once() -> None:
    line = [{"sku": "s", "qty": 1, "unit_price": 5.0}]
    state = run(
        ev("e1", "order_placed", T0, order_id="o1", total=5.0, lines=line),
        ev("e2", "order_placed", T0, order_id="o1", total=5.0, lines=line),
    )
    assert (state.order_count, state.total_spend) == (1, 5.0)


def test_redelivered_event_id_is_not_applied_twice() -> None:
    first = apply(None, add("e1", T0), now=T0)
    again = apply(first.state, add("e1", T0), now=T0 + 1)
    assert not again.applied
    assert again.state is first.state


def test_dedupe_window_is_bounded() -> None:
    limits = Limits(dedupe_window=3)
    state = run(
        *(ev(f"e{i}", "search_performed", T0 + i, query="q") for i in range(10)), limits=limits
    )
    assert state.seen_event_ids == ("e7", "e8", "e9")


def test_recent_views_are_unique_newest_first_and_capped() -> None:
    views = [
        ev(f"e{i}", "product_viewed", T0 + i, sku=f"s{i % 4}", category="c", price=1.0)
        for i in range(8)
    ]
    state = run(*views, limits=Limits(recent_views=3))
    assert [v.sku for v in state.recent_views] == ["s3", "s2", "s1"]


def test_apply_does_not_mutate_its_input() -> None:
    before = run(add("e1", T0))
    snapshot = orjson.dumps(before)
    apply(before, add("e2", T0 + 1, "s9"), now=T0 + 2)
    assert orjson.dumps(before) == snapshot


@pytest.mark.parametrize("n_events", [1, 5])
def test_state_round_trips_through_orjson(n_events: int) -> None:
    events = [
        add("a", T0),
        ev("b", "product_viewed", T0, sku="s", category="c", price=2.0),
        ev(
            "c",
            "order_placed",
            T0 + 9,
            order_id="o",
            cart_id="k1",
            total=10.0,
            lines=[{"sku": "s1", "qty": 1, "unit_price": 10.0}],
        ),
        add("d", T0 + 10, cart="k2"),
        ev("e", "checkout_started", T0 + 11, cart_id="k2"),
    ]
    state = run(*events[:n_events])
    assert CustomerState.from_dict(orjson.loads(orjson.dumps(state))) == state
