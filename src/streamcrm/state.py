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
from typing import Any

from streamcrm.events import Event
from streamcrm.evolve import evolve
from streamcrm.policies.complaint_sla import Complaint, ComplaintState
from streamcrm.policies.coupon_abuse import AbuseState

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


@dataclass(frozen=True, slots=True)
class CartLine:
    sku: str
    qty: int
    unit_price: float
    category: str | None = None


@dataclass(frozen=True, slots=True)
class Cart:
    """The open cart. ``version`` bumps on every content change; ``last_activity`` on any cart event."""

    cart_id: str
    lines: tuple[CartLine, ...] = ()
    version: int = 0
    last_activity: float = 0.0
    checkout_started_at: float | None = None

    @property
    def value(self) -> float:
        return round(sum(line.qty * line.unit_price for line in self.lines), 2)

    @property
    def units(self) -> int:
        return sum(line.qty for line in self.lines)


@dataclass(frozen=True, slots=True)
class View:
    sku: str
    category: str
    price: float
    ts: float
    views: int = 1  # how often this SKU was viewed while it stayed in recent_views


@dataclass(frozen=True, slots=True)
class OrderRecord:
    order_id: str
    total: float
    ts: float
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class Abandonment:
    """The last abandoned (or being-watched) cart: which stages fired for which version.

    ``abandoned_at`` is set once per cart id, when the cart first counts as abandoned;
    ``stages_fired`` refer to ``cart_version`` and re-arm when the cart changes.
    ``incentive_given``: this cart got (or, held out, would have got) an incentive;
    ``last_incentive_at``: the customer's last one, carried over to their next cart.
    """

    cart_id: str
    cart_version: int
    abandoned_at: float | None = None
    stages_fired: tuple[str, ...] = ()
    recovered: bool = False
    incentive_given: bool = False
    last_incentive_at: float | None = None


@dataclass(frozen=True, slots=True)
class Contact:
    """The last abandoned-cart message decided for this customer (sent or held out)."""

    coupon_id: str
    cart_id: str
    stage: str
    code: str | None
    at: float
    holdout: bool
    expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    """What CRM campaigns segment on; maintained by :mod:`streamcrm.policies.profile`."""

    lifecycle_stage: str = "prospect"
    tier: str = "none"
    points: int = 0
    order_points: tuple[tuple[str, int], ...] = ()  # points earned per order, for reversal
    monthly_spend: tuple[tuple[int, float], ...] = ()  # (30-day month index, spend)
    rhythm_days: float | None = None  # moving mean of the gaps between orders
    segment: str | None = None
    rfm: tuple[int, int, int] | None = None
    churn_score: float | None = None
    # The open churn example: (since, features); labelled 1 by an order within the
    # horizon, 0 when the horizon passes.
    churn_pending: tuple[float, tuple[tuple[str, float], ...]] | None = None
    winback_sent_at: float | None = None
    # The latest time stage and tier were evaluated at. Evaluation never goes back in
    # time: an event stamped before a deadline that already fired (late on another topic)
    # must not set the stage back and make the deadline fire again.
    evaluated_at: float | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Profile:
        if not data:
            return cls()
        pending = data.get("churn_pending")
        return cls(
            lifecycle_stage=data.get("lifecycle_stage", "prospect"),
            tier=data.get("tier", "none"),
            points=data.get("points", 0),
            order_points=tuple((o, p) for o, p in data.get("order_points", ())),
            monthly_spend=tuple((m, a) for m, a in data.get("monthly_spend", ())),
            rhythm_days=data.get("rhythm_days"),
            segment=data.get("segment"),
            rfm=(data["rfm"][0], data["rfm"][1], data["rfm"][2]) if data.get("rfm") else None,
            churn_score=data.get("churn_score"),
            churn_pending=(pending[0], tuple((k, v) for k, v in pending[1])) if pending else None,
            winback_sent_at=data.get("winback_sent_at"),
            evaluated_at=data.get("evaluated_at"),
        )


@dataclass(frozen=True, slots=True)
class OfferState:
    """The latest next-best-offer: what was shown (with the features it was scored on, so
    the ranker can learn when the reward resolves) and what the evaluation compares."""

    offer_id: str
    at: float
    items: tuple[tuple[str, tuple[tuple[str, float], ...]], ...]  # (sku, features); () once learned
    skus: tuple[str, ...] = ()  # what was shown, best first (served from Redis)
    rewarded: tuple[str, ...] = ()
    cart_version: int = -1
    eval_model: tuple[str, ...] = ()  # the model's top 10 at offer time
    eval_popular: tuple[str, ...] = ()  # the most popular 10 at the same moment
    evaluated: bool = False
    # The other yardsticks' top 10 at the same moment: (rule name, SKUs), e.g. "recent".
    eval_lists: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> OfferState | None:
        if not data:
            return None
        return cls(
            offer_id=data["offer_id"],
            at=data["at"],
            items=_offer_items(data),
            skus=tuple(data.get("skus", ())),
            rewarded=tuple(data.get("rewarded", ())),
            cart_version=data.get("cart_version", -1),
            eval_model=tuple(data.get("eval_model", ())),
            eval_popular=tuple(data.get("eval_popular", ())),
            evaluated=data.get("evaluated", False),
            eval_lists=tuple((name, tuple(skus)) for name, skus in data.get("eval_lists", ())),
        )


def _offer_items(data: dict[str, Any]) -> tuple[tuple[str, tuple[tuple[str, float], ...]], ...]:
    """Items as pairs of (name, value), or (state_codec's form) values under ``features``."""
    names = data.get("features")
    if names is not None:
        return tuple((sku, tuple(zip(names, values, strict=True))) for sku, values in data["items"])
    return tuple((sku, tuple((k, v) for k, v in x)) for sku, x in data["items"])


@dataclass(frozen=True, slots=True)
class CustomerState:
    """Everything streamcrm knows about one customer. Round-trips through :meth:`to_dict`."""

    customer_id: str
    first_seen: float
    last_seen: float
    cart: Cart | None = None
    recent_views: tuple[View, ...] = ()
    # The categories of recent searches, never their text (what someone types can be a
    # name, an address, a health term); a search without a category leaves nothing.
    search_categories: tuple[str, ...] = ()
    order_count: int = 0  # placed minus cancelled
    total_spend: float = 0.0  # net of cancellations
    last_order_at: float | None = None
    recent_orders: tuple[OrderRecord, ...] = ()
    closed_carts: tuple[str, ...] = ()
    seen_event_ids: tuple[str, ...] = ()
    events_applied: int = 0
    updated_at: float = 0.0
    consent: bool | None = None  # None: never said; the deployment's default applies
    abandonment: Abandonment | None = None
    last_contact: Contact | None = None
    # Times of messages actually sent, per kind (each kind has its own frequency caps).
    coupons_sent_at: tuple[float, ...] = ()
    reminders_sent_at: tuple[float, ...] = ()
    offers_sent_at: tuple[float, ...] = ()  # next-best-offers shown (their own caps)
    coupons_redeemed: int = 0
    profile: Profile = Profile()
    offer: OfferState | None = None
    recent_purchases: tuple[str, ...] = ()  # SKUs bought lately: never offered again soon
    # The last applied record's offset per input (topic, partition): see ``replayed``.
    offsets: tuple[tuple[str, int, int], ...] = ()
    # Open complaints and their SLAs (decisions/complaint_sla.py); bounded by SlaConfig.
    complaints: ComplaintState | None = None
    # Coupon-abuse features and flag (decisions/coupon_abuse.py); bounded by count and 30 days.
    abuse: AbuseState | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (orjson also serializes the dataclass directly)."""
        from dataclasses import asdict

        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CustomerState:
        cart = data.get("cart")
        return cls(
            customer_id=data["customer_id"],
            first_seen=data["first_seen"],
            last_seen=data["last_seen"],
            cart=None
            if cart is None
            else Cart(
                cart_id=cart["cart_id"],
                lines=tuple(CartLine(**line) for line in cart["lines"]),
                version=cart["version"],
                last_activity=cart["last_activity"],
                checkout_started_at=cart.get("checkout_started_at"),
            ),
            recent_views=tuple(
                View(*v) if isinstance(v, list) else View(**v) for v in data.get("recent_views", ())
            ),
            # "recent_searches" (raw text, before issue 17) is dropped on read.
            search_categories=tuple(data.get("search_categories", ())),
            order_count=data.get("order_count", 0),
            total_spend=data.get("total_spend", 0.0),
            last_order_at=data.get("last_order_at"),
            recent_orders=tuple(OrderRecord(**o) for o in data.get("recent_orders", ())),
            closed_carts=tuple(data.get("closed_carts", ())),
            seen_event_ids=tuple(data.get("seen_event_ids", ())),
            events_applied=data.get("events_applied", 0),
            updated_at=data.get("updated_at", 0.0),
            consent=data.get("consent"),
            abandonment=_maybe(Abandonment, data.get("abandonment")),
            last_contact=_maybe(Contact, data.get("last_contact")),
            coupons_sent_at=tuple(data.get("coupons_sent_at", ())),
            reminders_sent_at=tuple(data.get("reminders_sent_at", ())),
            offers_sent_at=tuple(data.get("offers_sent_at", ())),
            coupons_redeemed=data.get("coupons_redeemed", 0),
            profile=Profile.from_dict(data.get("profile")),
            offer=OfferState.from_dict(data.get("offer")),
            recent_purchases=tuple(data.get("recent_purchases", ())),
            offsets=tuple((t, p, o) for t, p, o in data.get("offsets", ())),
            complaints=_complaints(data.get("complaints")),
            abuse=AbuseState.from_dict(data["abuse"]) if data.get("abuse") else None,
        )


def _complaints(data: dict[str, Any] | None) -> ComplaintState | None:
    if not data:
        return None
    opened = tuple(Complaint(**c) for c in data["open"])
    return ComplaintState(data["customer_id"], opened, tuple(data["closed"]))


def _maybe(cls: Any, data: dict[str, Any] | None) -> Any:
    if data is None:
        return None
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**fields)


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
    step = _STEPS[event.type]
    new = step(state, event)
    dropped = 0
    if new.cart is not None and len(new.cart.lines) > MAX_CART_LINES:
        dropped = len(new.cart.lines) - MAX_CART_LINES
        new = evolve(new, cart=evolve(new.cart, lines=new.cart.lines[dropped:]))
    views = new.recent_views
    if event.type == "product_viewed" and len(views) > limits.recent_views:
        views = views[: limits.recent_views]  # in the same copy as the rest (one, not two)
    new = evolve(
        new,
        first_seen=min(state.first_seen, event.ts),
        last_seen=max(state.last_seen, event.ts),
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
    b = event.body
    # Most recent first, one entry per SKU, counting repeat views (an offer feature).
    again = sum(v.views for v in state.recent_views if v.sku == b["sku"])
    view = View(b["sku"], b["category"], float(b["price"]), event.ts, again + 1)
    rest = tuple(v for v in state.recent_views if v.sku != view.sku)
    return evolve(state, recent_views=(view, *rest))


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
    # Service-desk events change only their decisions' sub-states (decisions/).
    **dict.fromkeys(
        ("complaint_opened", "complaint_replied", "complaint_resolved", "customer_flag_cleared"),
        _unchanged,
    ),
}
