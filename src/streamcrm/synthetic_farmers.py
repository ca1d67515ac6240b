"""Coupon farmers for the synthetic shop: how they shop, as a session planner. Pure.

A farmer comes back every 6-24 hours (their own rhythm, drawn once), looks at a few
products, fills a fresh cart with 2-4 of them and usually walks away, so every session
leaves an abandoned cart that may earn a coupon. One session in four they order, always
with a coupon code, and half of those orders are cancelled afterwards. Ordinary
customers abandon carts too (two thirds of their carts) and may redeem coupons
(``coupon_share``), so no single signal separates the two.

>>> import random
>>> rng = random.Random(3)
>>> 6.0 <= farmer_gap_hours(rng) <= 24.0, coupon_code(rng)[:3]
(True, 'SC-')
"""

from __future__ import annotations

import random
from typing import Any, Protocol

from streamcrm.synthetic_catalog import Catalog

P_ORDER = 0.25  # a farmer's session ends in an order (always with a coupon)
P_CANCEL = 0.5  # a farmer's coupon order is cancelled afterwards
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

Step = tuple[float, Any, dict[str, Any]]  # (ts, topic kind, body) as synthetic plans them


class Shopper(Protocol):
    customer_id: str
    categories: tuple[int, ...]
    cart_seq: int
    cart: dict[str, list[Any]]
    orders: list[str]

    @property
    def cart_id(self) -> str: ...


def farmer_gap_hours(rng: random.Random) -> float:
    return rng.uniform(6.0, 24.0)


def coupon_code(rng: random.Random) -> str:
    return "SC-" + "".join(rng.choice(_ALPHABET) for _ in range(10))


class FarmerPlan:
    """Lays out one farmer session with ``rng`` (the farmers' own random stream)."""

    def __init__(self, rng: random.Random, shop: Catalog, shopper: Shopper) -> None:
        self.rng, self.shop, self.c = rng, shop, shopper

    def session(self, start: float) -> list[Step]:
        rng, c = self.rng, self.c
        channel = rng.choice(("web", "app"))
        session = f"{c.customer_id}-s{int(start)}"
        t, steps = start, []

        def step(kind: str, **body: Any) -> None:
            nonlocal t
            t += rng.uniform(3, 40)
            steps.append((t, kind, {"channel": channel, "session_id": session, **body}))

        if c.cart:  # walk away from the last cart: a fresh one farms another coupon
            c.cart, c.cart_seq = {}, c.cart_seq + 1
        viewed = [self.shop.draw_in(rng, rng.choice(c.categories)) for _ in range(rng.randint(2, 5))]
        for sku, cat, price in viewed:
            step("browse", type="product_viewed", sku=sku, category=cat, price=price)
        for sku, cat, price in rng.sample(viewed, rng.randint(2, len(viewed))):
            qty = rng.randint(1, 3)
            c.cart.setdefault(sku, [0, price, cat])[0] += qty
            step("cart", type="cart_item_added", cart_id=c.cart_id, sku=sku, qty=qty,
                 unit_price=price, category=cat)  # fmt: skip
        if rng.random() < P_ORDER:
            self._order(step)
        return steps

    def _order(self, step: Any) -> None:
        rng, c = self.rng, self.c
        lines = [
            {"sku": s, "qty": q, "unit_price": pr, "category": cat}
            for s, (q, pr, cat) in sorted(c.cart.items())
        ]
        order_id = f"{c.customer_id}-o{len(c.orders) + 1}"
        total = round(sum(line["qty"] * line["unit_price"] for line in lines), 2)
        step("cart", type="checkout_started", cart_id=c.cart_id)
        step("order", type="order_placed", order_id=order_id, lines=lines, total=total,
             currency="EUR", cart_id=c.cart_id, coupon_code=coupon_code(rng))  # fmt: skip
        c.orders.append(order_id)
        c.cart, c.cart_seq = {}, c.cart_seq + 1
        if rng.random() < P_CANCEL:
            step("order", type="order_cancelled", order_id=order_id, reason="changed mind")
