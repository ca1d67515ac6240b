"""The customer state's data: one frozen dataclass per concept (cart, views, orders,
abandonment, contact, profile, offer) and :class:`CustomerState`, which holds them, with
the readers that rebuild them from the changelog's JSON (``from_dict``; the compact form
is :mod:`streamcrm.state_codec`). Transitions are in :mod:`streamcrm.state`, which also
re-exports every name here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streamcrm.evolve import fast_init
from streamcrm.policies.complaint_sla import Complaint, ComplaintState
from streamcrm.policies.coupon_abuse import AbuseState
from streamcrm.policies.flash_sale import FlashState, state_from_dict


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


@fast_init  # one per product view
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
    # For the lift readout and the uplift learner (policies/cart_resolution.py): the
    # incentive decided (sent or, held out, would-be), whether one was sent, the uplift
    # features at the incentive decision and the prediction used; resolved once counted.
    coupon_kind: str | None = None
    coupon_percent: float | None = None
    treated: bool = False
    uplift_x: tuple[float, ...] = ()
    predicted_uplift: float | None = None
    resolved: bool = False


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


@fast_init  # one per offer
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
    # Pending flash-sale notices and those sent (decisions/flash_sale.py); bounded.
    flash: FlashState | None = None

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
            flash=state_from_dict(data.get("flash")),
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
