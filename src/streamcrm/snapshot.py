"""The per-customer snapshot the storefront reads from Redis: key scheme and fields. Pure.

Key ``<prefix><customer_id>`` (default prefix ``streamcrm:customer:``) holds a hash, read
with one ``HGETALL``. Documented in schemas/README.md; clients ignore unknown fields.

>>> from streamcrm.state import CustomerState
>>> fields = snapshot_fields(CustomerState("c1", first_seen=0.0, last_seen=60.0), now=61.0)
>>> fields["order_count"], fields["cart_value"], fields["last_seen"]
('0', '0.00', '1970-01-01T00:01:00.000Z')
"""

from __future__ import annotations

import orjson

from streamcrm.events import format_ts
from streamcrm.state import CustomerState

DEFAULT_PREFIX = "streamcrm:customer:"


def snapshot_key(customer_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    return prefix + customer_id


def snapshot_fields(state: CustomerState, now: float) -> dict[str, str]:
    """The hash fields for one customer; every value a string, as Redis stores it."""
    cart = state.cart
    sent = state.last_contact if state.last_contact and not state.last_contact.holdout else None
    expires = sent.expires_at if sent else None
    return {
        "cart_id": cart.cart_id if cart else "",
        "cart_value": f"{cart.value:.2f}" if cart else "0.00",
        "cart_items": str(cart.units if cart else 0),
        "cart_lines": str(len(cart.lines) if cart else 0),
        "cart_version": str(cart.version if cart else 0),
        "order_count": str(state.order_count),
        "total_spend": f"{state.total_spend:.2f}",
        "first_seen": format_ts(state.first_seen),
        "last_seen": format_ts(state.last_seen),
        "updated_at": format_ts(now),
        "coupon_id": sent.coupon_id if sent else "",
        "coupon_code": (sent.code or "") if sent else "",
        "coupon_stage": sent.stage if sent else "",
        "coupon_expires_at": format_ts(expires) if expires is not None else "",
        "lifecycle_stage": state.profile.lifecycle_stage,
        "segment": state.profile.segment or "",
        "tier": state.profile.tier,
        "points": str(state.profile.points),
        "churn_score": ""
        if state.profile.churn_score is None
        else f"{state.profile.churn_score:.4f}",
        "offer_id": state.offer.offer_id if state.offer else "",
        "offers": orjson.dumps(list(state.offer.skus)).decode() if state.offer else "[]",
    }
