"""Seeded synthetic storefront traffic: customers with habits, sessions, carts, orders.

Pure: the same arguments give byte-identical records. Used by ``streamcrm generate``,
the demo, the benchmark and the tests (the project ships no third-party data).

The catalogue (:mod:`streamcrm.synthetic_catalog`) has ``skus`` SKUs over up to 400
categories with Zipf-like popularity; each customer mostly browses three favourite
categories. Personas differ in how much they browse, how often they cart, and how often a
cart is bought. Proportions, chosen to match what shops publish (Baymard's ~70% cart
abandonment, add-to-cart in ~10-20% of sessions, 2-5% of sessions converting, a few per
cent of orders cancelled), measured (``scripts/synthetic_mix.py``) on
``generate(200_000, seed=7, customers=20_000, skus=100_000)``:
17% of sessions add to the cart, 5% end in an order, 67% of carts are never ordered,
5% of orders are cancelled, 30% of sessions search first, 41% of sessions are return
visits; a customer comes back every 30-96 hours (by persona), and an abandoned cart stays
open and is sometimes bought in a later session. ``zipf`` flattens (< 1) or steepens the
popularity curve. First visits are spread over one such gap, so a large customer base
is not all active at once. Malformed records, when asked for, carry the dead-letter
reason the processor must give them and never touch a customer's real history.

Coupon farmers (off by default): ``farmer_share`` adds that share of ``customers`` as
extra customers ``f000000``... who build a fresh cart most sessions and abandon it to
farm abandoned-cart coupons, and order with a coupon and cancel now and then
(:mod:`streamcrm.synthetic_farmers`); ``coupon_share`` makes that share of ordinary
orders redeem a coupon too, so coupon use alone does not give a farmer away. Both draw
from their own random stream: with both at 0 the records are byte-identical to before.

>>> records = list(generate(6, seed=1, customers=3, bad=2))
>>> [r.malformed for r in records].count(None)
4
>>> records == list(generate(6, seed=1, customers=3, bad=2))
True
"""

from __future__ import annotations

import heapq
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from streamcrm.events import format_ts
from streamcrm.synthetic_catalog import Catalog
from streamcrm.synthetic_farmers import FarmerPlan, coupon_code, farmer_gap_hours

TopicKind = Literal["browse", "cart", "order"]
MALFORMED_KINDS = (
    "invalid_json",
    "not_an_object",
    "unknown_type",
    "wrong_topic",
    "schema_violation",
    "key_mismatch",
)
N_SKUS = 400  # the default catalogue (the benchmark's realistic shop is larger)


@dataclass(frozen=True, slots=True)
class SyntheticRecord:
    topic_kind: TopicKind
    key: bytes
    value: bytes
    malformed: str | None  # None, or the dead-letter reason the processor must give


@dataclass(frozen=True, slots=True)
class Persona:
    name: str
    views_mean: float  # product views per session
    p_cart: float  # a session puts something in the cart
    p_order: float  # a session with a cart ends in an order
    gap_hours: float  # mean time between sessions


PERSONAS = (
    Persona("window_shopper", 6.0, 0.04, 0.10, 60.0),
    Persona("bargain_hunter", 8.0, 0.12, 0.20, 30.0),
    Persona("loyal_repeat", 3.0, 0.25, 0.55, 48.0),
    Persona("cart_abandoner", 4.0, 0.30, 0.08, 36.0),
    Persona("big_spender", 3.0, 0.20, 0.45, 96.0),
)
PERSONA_WEIGHTS = (0.30, 0.20, 0.20, 0.20, 0.10)
# Not drawn by weight: farmers are added on top (``farmer_share``), each with its own
# gap between sessions (synthetic_farmers.farmer_gap_hours); the fields here are unused.
FARMER = Persona("coupon_farmer", 2.0, 1.0, 0.25, 12.0)


@dataclass(slots=True)
class _Customer:
    customer_id: str
    persona: Persona
    categories: tuple[int, ...]  # favourite category indexes in the catalogue
    cart_seq: int = 0
    cart: dict[str, list[Any]] = field(default_factory=dict)  # sku -> [qty, price, category]
    orders: list[str] = field(default_factory=list)
    plan: list[tuple[float, TopicKind, dict[str, Any]]] = field(default_factory=list)

    @property
    def cart_id(self) -> str:
        return f"{self.customer_id}-cart{self.cart_seq}"


class _Traffic:
    def __init__(
        self,
        rng: random.Random,
        customers: int,
        start: float,
        shop: Catalog,
        farmers: tuple[int, float, random.Random] | None = None,
    ) -> None:
        self.rng = rng
        self.shop = shop
        n_farmers, self.coupon_share, self.frng = farmers or (0, 0.0, random.Random(0))
        self.customers = [
            _Customer(
                customer_id=f"c{i:06d}",
                persona=rng.choices(PERSONAS, PERSONA_WEIGHTS)[0],
                categories=shop.favourites(rng),
            )
            for i in range(customers)
        ]
        # (next event time, customer index): the customer whose next click comes first.
        # First visits are spread over one visit gap: a steady stream, not a stampede.
        self.queue = [
            (start + rng.uniform(0, 3600 * c.persona.gap_hours), i)
            for i, c in enumerate(self.customers)
        ]
        heapq.heapify(self.queue)
        # Farmers live apart (their own list and random stream), so ordinary customers'
        # records and the malformed ones do not change when farmers are added.
        self.farmers = [
            _Customer(f"f{i:06d}", FARMER, shop.favourites(self.frng)) for i in range(n_farmers)
        ]
        self.farmer_gaps = [farmer_gap_hours(self.frng) for _ in self.farmers]
        for j, gap in enumerate(self.farmer_gaps):
            heapq.heappush(self.queue, (start + self.frng.uniform(0, 3600 * gap), customers + j))

    def event_id(self, rng: random.Random | None = None) -> str:
        return str(uuid.UUID(int=(rng or self.rng).getrandbits(128), version=4))

    def next_valid(self) -> SyntheticRecord:
        when, index = heapq.heappop(self.queue)
        farmer = index - len(self.customers)
        customer = self.customers[index] if farmer < 0 else self.farmers[farmer]
        rng = self.rng if farmer < 0 else self.frng
        if not customer.plan:
            if farmer < 0:
                self._plan_session(customer, when)
            else:
                customer.plan = FarmerPlan(self.frng, self.shop, customer).session(when)
        ts, kind, body = customer.plan.pop(0)
        gap = customer.persona.gap_hours if farmer < 0 else self.farmer_gaps[farmer]
        next_time = customer.plan[0][0] if customer.plan else ts + rng.expovariate(1 / (gap * 3600))
        heapq.heappush(self.queue, (next_time, index))
        event = self._envelope(customer.customer_id, ts, body, rng)
        return SyntheticRecord(kind, customer.customer_id.encode(), orjson.dumps(event), None)

    def _envelope(
        self, customer_id: str, ts: float, body: dict[str, Any], rng: random.Random | None = None
    ) -> dict[str, Any]:
        return {
            "event_id": self.event_id(rng),
            "type": body.pop("type"),
            "customer_id": customer_id,
            "ts": format_ts(ts),
            "channel": body.pop("channel"),
            **({"session_id": body.pop("session_id")} if "session_id" in body else {}),
            **body,
        }

    def _plan_session(self, c: _Customer, start: float) -> None:
        """Lay out one session's clicks; the cart changes as they are planned."""
        rng, p = self.rng, c.persona
        channel = rng.choices(("web", "app", "email"), (0.6, 0.3, 0.1))[0]
        session = f"{c.customer_id}-s{int(start)}"
        t = start
        steps: list[tuple[float, TopicKind, dict[str, Any]]] = []

        def step(kind: TopicKind, **body: Any) -> None:
            nonlocal t
            t += rng.uniform(3, 90)
            steps.append((t, kind, {"channel": channel, "session_id": session, **body}))

        if rng.random() < 0.3:
            step(
                "browse",
                type="search_performed",
                query=self.shop.category_name(rng.choice(c.categories)),
                results=rng.randint(0, 80),
            )
        viewed = []
        for _ in range(1 + int(rng.expovariate(1 / p.views_mean))):
            shop = self.shop
            category = rng.choice(c.categories) if rng.random() < 0.8 else shop.draw_category(rng)
            sku, cat, price = shop.draw_in(rng, category)
            viewed.append((sku, cat, price))
            step("browse", type="product_viewed", sku=sku, category=cat, price=price)
        if rng.random() < p.p_cart:
            for sku, cat, price in rng.sample(viewed, min(len(viewed), rng.randint(1, 3))):
                qty = 1 if rng.random() < 0.8 else rng.randint(2, 3)
                line = c.cart.setdefault(sku, [0, price, cat])
                line[0] += qty
                step(
                    "cart",
                    type="cart_item_added",
                    cart_id=c.cart_id,
                    sku=sku,
                    qty=qty,
                    unit_price=price,
                    category=cat,
                )
            if len(c.cart) > 1 and rng.random() < 0.15:
                sku = rng.choice(sorted(c.cart))
                qty = c.cart.pop(sku)[0]
                step("cart", type="cart_item_removed", cart_id=c.cart_id, sku=sku, qty=qty)
        if c.cart and rng.random() < 0.03:
            step("cart", type="cart_cleared", cart_id=c.cart_id)
            self._new_cart(c)
        elif c.cart and rng.random() < p.p_order:
            step("cart", type="checkout_started", cart_id=c.cart_id)
            self._order(c, step)
        c.plan = steps

    def _order(self, c: _Customer, step: Any) -> None:
        lines = [
            {"sku": s, "qty": q, "unit_price": pr, "category": cat}
            for s, (q, pr, cat) in sorted(c.cart.items())
        ]
        order_id = f"{c.customer_id}-o{len(c.orders) + 1}"
        total = round(sum(line["qty"] * line["unit_price"] for line in lines), 2)
        coupon = {}
        if self.coupon_share and self.frng.random() < self.coupon_share:
            coupon = {"coupon_code": coupon_code(self.frng)}
        step(
            "order",
            type="order_placed",
            order_id=order_id,
            lines=lines,
            total=total,
            currency="EUR",
            cart_id=c.cart_id,
            **coupon,
        )
        c.orders.append(order_id)
        self._new_cart(c)
        if self.rng.random() < 0.04:
            step("order", type="order_cancelled", order_id=order_id, reason="changed mind")

    @staticmethod
    def _new_cart(c: _Customer) -> None:
        c.cart = {}
        c.cart_seq += 1

    def malformed(self, kind: str, ts: float) -> SyntheticRecord:
        """A bad record of ``kind`` built from a throwaway event: no customer state changes."""
        rng = self.rng
        victim, other = (
            rng.sample(self.customers, 2) if len(self.customers) > 1 else (self.customers[0],) * 2
        )
        sku, cat, price = self.shop.draw_in(rng, self.shop.draw_category(rng))
        base = {
            "type": "product_viewed",
            "channel": "web",
            "sku": sku,
            "category": cat,
            "price": price,
        }
        event = self._envelope(victim.customer_id, ts, base)
        key = victim.customer_id.encode()
        topic: TopicKind = "browse"
        if kind == "invalid_json":
            value = orjson.dumps(event)[: rng.randint(1, 40)]
        elif kind == "not_an_object":
            value = orjson.dumps(rng.choice([[event], 42, "product_viewed", None]))
        elif kind == "unknown_type":
            value = orjson.dumps({**event, "type": "cart_teleported"})
        elif kind == "wrong_topic":
            value = orjson.dumps({**event, "type": "order_cancelled", "order_id": "o-x"})
        elif kind == "schema_violation":
            value, topic = self._violation(event)
        else:  # key_mismatch: a perfectly valid event under someone else's key
            value = orjson.dumps(event)
            key = (other.customer_id if other is not victim else victim.customer_id + "x").encode()
        return SyntheticRecord(topic, key, value, kind)

    def _violation(self, event: dict[str, Any]) -> tuple[bytes, TopicKind]:
        cart = {**event, "type": "cart_item_added", "cart_id": "k-bad", "qty": 1, "unit_price": 5.0}
        variants: list[tuple[dict[str, Any], TopicKind]] = [
            ({**cart, "qty": -1}, "cart"),
            ({**cart, "qty": 0}, "cart"),
            ({**cart, "qty": "2"}, "cart"),
            ({**event, "price": -5.0}, "browse"),
            ({**event, "sku": ""}, "browse"),
            ({k: v for k, v in event.items() if k != "sku"}, "browse"),
            ({k: v for k, v in event.items() if k != "ts"}, "browse"),
        ]
        body, topic = self.rng.choice(variants)
        return orjson.dumps(body), topic


def generate(
    n_events: int,
    *,
    seed: int,
    customers: int = 500,
    skus: int = N_SKUS,
    zipf: float = 1.0,
    bad: int = 0,
    start: datetime = datetime(2026, 11, 1, tzinfo=UTC),
    farmer_share: float = 0.0,
    coupon_share: float = 0.0,
) -> Iterator[SyntheticRecord]:
    """Yield exactly ``n_events`` records, ``bad`` of them malformed (kinds rotate)."""
    if not (0.0 <= farmer_share <= 1.0 and 0.0 <= coupon_share <= 1.0):
        msg = f"need farmer_share and coupon_share in [0, 1] (got {farmer_share}, {coupon_share})"
        raise ValueError(msg)
    if n_events < 0 or bad < 0 or customers < 1 or skus < 1:
        msg = (
            f"need n_events >= 0, bad >= 0, customers >= 1, skus >= 1"
            f" (got {n_events}, {bad}, {customers}, {skus})"
        )
        raise ValueError(msg)
    if bad > n_events:
        msg = f"bad ({bad}) cannot exceed n_events ({n_events})"
        raise ValueError(msg)
    rng = random.Random(seed)
    bad_at = set(rng.sample(range(n_events), bad))
    farmers = (round(customers * farmer_share), coupon_share, random.Random(f"farmers-{seed}"))
    traffic = _Traffic(rng, customers, start.timestamp(), Catalog(skus, zipf), farmers)
    produced_bad = 0
    last_ts = start.timestamp()
    for position in range(n_events):
        if position in bad_at:
            kind = MALFORMED_KINDS[produced_bad % len(MALFORMED_KINDS)]
            produced_bad += 1
            yield traffic.malformed(kind, last_ts)
        else:
            record = traffic.next_valid()
            last_ts = traffic.queue[0][0] if traffic.queue else last_ts
            yield record
