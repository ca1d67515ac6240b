"""Customer state and its pure transitions: ``apply(state, event, now) -> Transition``.

One ``CustomerState`` per customer lives in a changelog-backed Faust table. Transitions
never mutate their input and never read the clock; ``now`` is the processing time the
shell passes in (wall clock live, the watermark in a replay).

The three input topics are ordered per topic but not across topics, so a cart event can
arrive after the order that closed its cart. Closed cart ids are remembered (bounded) and
late events for them only update ``last_seen``.

>>> from streamcrm.events import Event
>>> add = Event("e1", "cart_item_added", "c1", 100.0, "web", None,
...             {"cart_id": "k1", "sku": "s1", "qty": 2, "unit_price": 9.5})
>>> t = apply(None, add, now=101.0)
>>> t.applied, t.state.cart.value, t.state.cart.version
(True, 19.0, 1)
>>> apply(t.state, add, now=102.0).applied  # the same event_id again: a redelivery
False
"""

from __future__ import annotations

from dataclasses import dataclass

from streamcrm.events import Event
from streamcrm.evolve import evolve, fast_init
from streamcrm.state_model import (
    Abandonment,
    Cart,
    CartLine,
    Contact,
    CustomerState,
    OfferState,
    OrderRecord,
    Profile,
    View,
)

__all__ = [
    "DEFAULT_LIMITS", "MAX_CART_LINES", "MAX_CLOSED_CARTS", "MAX_LINE_QTY", "MAX_MONEY",
    "MAX_RECENT_ORDERS", "MAX_RECENT_PURCHASES", "MAX_RECENT_SEARCHES", "Abandonment", "Cart",
    "CartLine", "Contact", "CustomerState", "Limits", "OfferState", "OrderRecord", "Profile",
    "Transition", "View", "apply", "at_offset", "replayed",
]  # fmt: skip

# Bounds that keep one customer's state small however long they stay (bytes/customer).
MAX_RECENT_ORDERS = 20
MAX_CLOSED_CARTS = 8
MAX_RECENT_SEARCHES = 5
MAX_RECENT_PURCHASES = 20
# An open cart keeps at most this many lines (the coupon schema's limit; also what keeps
# one changelog record far under Kafka's 1 MB): adding one more drops the oldest line.
MAX_CART_LINES = 500
MAX_LINE_QTY = 1000  # per line, as the schemas' qty: more units of one SKU are clamped
MAX_MONEY = 1_000_000.0  # the schemas' money maximum


@fast_init  # one per event
@dataclass(frozen=True, slots=True)
class Transition:
    """The outcome of one event: the new state, and whether the event changed anything."""

    state: CustomerState
    applied: bool
    dropped_lines: int = 0  # cart lines dropped to keep the cart within MAX_CART_LINES


@dataclass(frozen=True, slots=True)
class Limits:
    dedupe_window: int = 64
    recent_views: int = 20


DEFAULT_LIMITS = Limits()


def apply(
    state: CustomerState | None, event: Event, now: float, limits: Limits = DEFAULT_LIMITS
) -> Transition:
    """Apply one validated event. A redelivered ``event_id`` returns ``applied=False``."""
    if state is None:
        state = CustomerState(
            customer_id=event.customer_id, first_seen=event.ts, last_seen=event.ts
        )
    elif event.event_id in state.seen_event_ids:
        return Transition(state, applied=False)
    if event.type == "product_viewed":  # the views in the same copy as the rest (one, not two)
        new, views = state, _viewed(state.recent_views, event)[: limits.recent_views]
    else:
        new = _STEPS[event.type](state, event)
        views = new.recent_views
    dropped = 0
    if new.cart is not None and len(new.cart.lines) > MAX_CART_LINES:
        dropped = len(new.cart.lines) - MAX_CART_LINES
        new = evolve(new, cart=evolve(new.cart, lines=new.cart.lines[dropped:]))
    ts, first, last = event.ts, state.first_seen, state.last_seen
    new = evolve(
        new,
        first_seen=ts if ts < first else first,  # min() and max(), without the calls
        last_seen=ts if ts > last else last,
        seen_event_ids=(*state.seen_event_ids, event.event_id)[-limits.dedupe_window :],
        events_applied=state.events_applied + 1,
        updated_at=now,
        recent_views=views,
    )
    return Transition(new, applied=True, dropped_lines=dropped)


def replayed(state: CustomerState | None, topic: str, partition: int, offset: int) -> bool:
    """Was the record at this position already applied to this customer?

    A crash replays every record after the last committed offset. The event-id window
    alone cannot catch a replay of more than ``dedupe_window`` events of one customer:
    each re-applied event pushes a newer id out of the window, so all of them apply
    again. Records of one input partition are applied in offset order on the wall clock,
    so an offset at or below the last one applied is a replay.

    >>> s = CustomerState("c1", 0.0, 0.0, offsets=(("cart", 3, 41),))
    >>> replayed(s, "cart", 3, 41), replayed(s, "cart", 3, 42), replayed(s, "browse", 3, 5)
    (True, False, False)
    """
    if state is None:
        return False
    return any(t == topic and p == partition and offset <= o for t, p, o in state.offsets)


def at_offset(state: CustomerState, topic: str, partition: int, offset: int) -> CustomerState:
    """Remember the position of the record just applied (one entry per input partition)."""
    rest = tuple(entry for entry in state.offsets if entry[0] != topic or entry[1] != partition)
    return evolve(state, offsets=(*rest, (topic, partition, offset)))


def _product_viewed(state: CustomerState, event: Event) -> CustomerState:
    return evolve(state, recent_views=_viewed(state.recent_views, event))


def _viewed(views: tuple[View, ...], event: Event) -> tuple[View, ...]:
    """Most recent first, one entry per SKU, counting repeat views (an offer feature)."""
    b = event.body
    sku, again, rest = b["sku"], 0, []
    for v in views:  # one pass (two generators were measurable: a view is the commonest event)
        if v.sku == sku:
            again += v.views
        else:
            rest.append(v)
    return (View(sku, b["category"], float(b["price"]), event.ts, again + 1), *rest)


def _search_performed(state: CustomerState, event: Event) -> CustomerState:
    category = event.body.get("category")
    if category is None:
        return state
    searches = (category, *state.search_categories)[:MAX_RECENT_SEARCHES]
    return evolve(state, search_categories=searches)


def _open_cart(state: CustomerState, cart_id: str) -> Cart | None:
    """The cart this event may change, or None when it is a late event for a closed cart."""
    if cart_id in state.closed_carts:
        return None
    if state.cart is not None and state.cart.cart_id == cart_id:
        return state.cart
    # A new cart id replaces whatever was open (the storefront started a new cart).
    return Cart(cart_id=cart_id)


def _cart_item_added(state: CustomerState, event: Event) -> CustomerState:
    b = event.body
    cart = _open_cart(state, b["cart_id"])
    if cart is None:
        return state
    sku, qty, price = b["sku"], int(b["qty"]), float(b["unit_price"])
    lines = list(cart.lines)
    for i, line in enumerate(lines):
        if line.sku == sku:
            lines[i] = evolve(line, qty=min(line.qty + qty, MAX_LINE_QTY), unit_price=price)
            break
    else:
        lines.append(CartLine(sku=sku, qty=qty, unit_price=price, category=b.get("category")))
    return evolve(state, cart=_touched(cart, event.ts, tuple(lines)))


def _cart_item_removed(state: CustomerState, event: Event) -> CustomerState:
    b = event.body
    cart = _open_cart(state, b["cart_id"])
    if cart is None:
        return state
    lines = []
    for line in cart.lines:
        if line.sku == b["sku"]:
            remaining = line.qty - int(b["qty"])
            if remaining > 0:
                lines.append(evolve(line, qty=remaining))
        else:
            lines.append(line)
    return evolve(state, cart=_touched(cart, event.ts, tuple(lines)))


def _touched(cart: Cart, ts: float, lines: tuple[CartLine, ...]) -> Cart:
    return evolve(
        cart, lines=lines, version=cart.version + 1, last_activity=max(cart.last_activity, ts)
    )


def _cart_cleared(state: CustomerState, event: Event) -> CustomerState:
    return _close_cart(state, event.body["cart_id"])


def _close_cart(state: CustomerState, cart_id: str | None) -> CustomerState:
    current = state.cart
    closing = cart_id if cart_id is not None else (current.cart_id if current else None)
    if closing is None:
        return state
    closed = (*(c for c in state.closed_carts if c != closing), closing)
    cart = None if current is not None and current.cart_id == closing else current
    return evolve(state, cart=cart, closed_carts=closed[-MAX_CLOSED_CARTS:])


def _checkout_started(state: CustomerState, event: Event) -> CustomerState:
    cart = _open_cart(state, event.body["cart_id"])
    if cart is None:
        return state
    cart = evolve(
        cart, checkout_started_at=event.ts, last_activity=max(cart.last_activity, event.ts)
    )
    return evolve(state, cart=cart)


def _order_placed(state: CustomerState, event: Event) -> CustomerState:
    b = event.body
    if any(o.order_id == b["order_id"] for o in state.recent_orders):
        return state  # the same order sent twice under two event ids
    total = float(b["total"])
    order = OrderRecord(order_id=b["order_id"], total=total, ts=event.ts)
    placed = evolve(
        state,
        order_count=state.order_count + 1,
        total_spend=round(state.total_spend + total, 2),
        last_order_at=max(state.last_order_at or event.ts, event.ts),
        recent_orders=(*state.recent_orders, order)[-MAX_RECENT_ORDERS:],
    )
    bought = tuple(line["sku"] for line in b["lines"])
    placed = evolve(
        placed, recent_purchases=(*bought, *state.recent_purchases)[:MAX_RECENT_PURCHASES]
    )
    return _close_cart(placed, b.get("cart_id"))


def _order_cancelled(state: CustomerState, event: Event) -> CustomerState:
    order_id = event.body["order_id"]
    orders = list(state.recent_orders)
    for i, order in enumerate(orders):
        if order.order_id == order_id and not order.cancelled:
            orders[i] = evolve(order, cancelled=True)
            return evolve(
                state,
                order_count=state.order_count - 1,
                total_spend=round(state.total_spend - order.total, 2),
                recent_orders=tuple(orders),
            )
    return state  # unknown or already cancelled: nothing to reverse


def _consent_updated(state: CustomerState, event: Event) -> CustomerState:
    return evolve(state, consent=bool(event.body["marketing"]))


def _unchanged(state: CustomerState, event: Event) -> CustomerState:
    return state


_STEPS = {
    "product_viewed": _product_viewed,
    "search_performed": _search_performed,
    "cart_item_added": _cart_item_added,
    "cart_item_removed": _cart_item_removed,
    "cart_cleared": _cart_cleared,
    "checkout_started": _checkout_started,
    "order_placed": _order_placed,
    "order_cancelled": _order_cancelled,
    "consent_updated": _consent_updated,
    # Service-desk events change only their decisions' sub-states (decisions/); an offer
    # interaction teaches the offers' exposure model (policies/offer_learning.py).
    **dict.fromkeys(
        ("complaint_opened", "complaint_replied", "complaint_resolved", "customer_flag_cleared",
         "offer_interaction"),
        _unchanged,
    ),
}
