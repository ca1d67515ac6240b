"""Coupon-abuse flags: per-customer behaviour features, a flag that blocks incentives. Pure.

A decision module in the protocol's shape (issue 15): :func:`on_event`, :func:`due` and
:func:`on_due` return ``(state, emitted, outcomes)``. The state keeps what the features
need (recent carts, coupon orders, cancellations of coupon orders, order values), bounded
by count and by a 30-day horizon. At each scoring moment (a new cart, an order, a
cancellation; outcome ``abuse_scoring_moment``) the features are scored by a read-only
:class:`Scorer` (the River detector of :mod:`streamcrm.learning.anomaly`); a score at or
over ``threshold`` raises a flag and emits ``anomaly_flagged``. The caller learns the
same features after the step (``scorer.learn_one(features(state, event.ts))``): the model
is updated outside, so this module stays pure. A flag blocks incentives
(:func:`blocks_incentives`) until it expires (a deadline) or a ``customer_flag_cleared``
arrives; after a clear the customer is not re-flagged for ``clear_grace_s``, so a
reviewer's decision is not undone by the next click. Wired as
:mod:`streamcrm.decisions.coupon_abuse`.

>>> from streamcrm.events import Event
>>> class Always:  # a stand-in scorer: everything looks anomalous
...     ready = True
...     def score_one(self, x): return 0.99
...     def drivers(self, x): return [{"feature": "abandoned_carts_7d", "value": 3.0, "mean": 0.5, "z": 4.0}]
>>> cart = Event("e1", "cart_item_added", "c1", 0.0, "web", None,
...              {"cart_id": "k1", "sku": "s1", "qty": 1, "unit_price": 9.0})
>>> s, out, outcomes = on_event(None, cart, AbuseConfig(), scorer=Always())
>>> outcomes, out[0]["type"], blocks_incentives(s, 10.0), due(s, AbuseConfig()) / 86400
(('abuse_scoring_moment', 'anomaly_flagged'), 'anomaly_flagged', True, 14.0)
>>> clear = Event("e2", "customer_flag_cleared", "c1", 60.0, "email", None, {"reason": "manual_review"})
>>> s, out, outcomes = on_event(s, clear, AbuseConfig())
>>> outcomes, blocks_incentives(s, 61.0)
(('anomaly_flag_cleared',), False)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol

from streamcrm.events import Event, format_ts

DAY = 86_400.0
CART_TYPES = ("cart_item_added", "cart_item_removed", "checkout_started", "cart_cleared")
INPUT_TYPES = (*CART_TYPES, "order_placed", "order_cancelled", "customer_flag_cleared")
OUTCOMES = (
    "abuse_scoring_moment",  # features changed: score them, then learn them
    "anomaly_flagged",
    "anomaly_flag_cleared",
    "anomaly_flag_clear_unmatched",  # a clear for another flag, or with no flag set
    "anomaly_flag_expired",
)
MAX_ITEMS = 32  # per list in the state


class Scorer(Protocol):
    """Read-only view of the detector (:class:`streamcrm.learning.anomaly.AnomalyDetector`)."""

    @property
    def ready(self) -> bool: ...

    def score_one(self, x: dict[str, float]) -> float: ...

    def drivers(self, x: dict[str, float]) -> list[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class AbuseConfig:
    # HalfSpaceTrees scores of ordinary customers reach 0.9 on the synthetic shop (0.8
    # flagged 2.4-4.0% of them); at 0.95 it flagged 0-0.04% (scripts/coupon_abuse_eval.py).
    threshold: float = 0.95
    flag_ttl_s: float = 14 * DAY
    clear_grace_s: float = 7 * DAY
    abandon_after_s: float = 3600.0  # a cart idle this long counts as abandoned
    model_version: str = "hst-v1"


@dataclass(frozen=True, slots=True)
class AbuseState:
    customer_id: str
    carts: tuple[tuple[str, float, float, bool], ...] = ()  # (id, first, last, ordered)
    coupon_orders: tuple[tuple[str, float], ...] = ()  # (order id, ts)
    coupon_cancels: tuple[float, ...] = ()  # when a coupon order was cancelled
    orders: int = 0
    mean_before_last: float = 0.0  # mean order value before the last order
    last_order: tuple[float, float] | None = None  # (ts, total)
    flag: tuple[str, float, float] | None = None  # (flag id, raised at, expires at)
    cleared_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AbuseState:
        def pair(v: Any) -> Any:
            return tuple(v) if v is not None else None

        return cls(
            data["customer_id"],
            tuple((str(i), float(a), float(b), bool(o)) for i, a, b, o in data["carts"]),
            tuple((str(i), float(t)) for i, t in data["coupon_orders"]),
            tuple(float(t) for t in data["coupon_cancels"]),
            int(data["orders"]),
            float(data["mean_before_last"]),
            pair(data["last_order"]),
            pair(data["flag"]),
            data["cleared_at"],
        )


Step = tuple[AbuseState | None, tuple[dict[str, Any], ...], tuple[str, ...]]


def features(state: AbuseState | None, now: float, cfg: AbuseConfig | None = None) -> dict[str, float]:
    """The detector's features at ``now`` (see :data:`streamcrm.learning.anomaly.FEATURES`).

    >>> features(None, 0.0)["order_value_ratio"]
    1.0
    """
    if state is None:
        state = AbuseState("")
    idle = (cfg or AbuseConfig()).abandon_after_s
    ratio = 1.0
    last = state.last_order
    if last and state.orders > 1 and state.mean_before_last > 0 and now - last[0] < 30 * DAY:
        ratio = last[1] / state.mean_before_last
    return {
        "coupon_redemptions_7d": float(sum(1 for _, t in state.coupon_orders if now - t < 7 * DAY)),
        "cancels_after_coupon_30d": float(sum(1 for t in state.coupon_cancels if now - t < 30 * DAY)),
        "order_value_ratio": round(ratio, 4),
        "abandoned_carts_7d": float(sum(1 for c in state.carts if _abandoned(c, now, idle))),
    }


def _abandoned(cart: tuple[str, float, float, bool], now: float, idle: float) -> bool:
    _, first, last, ordered = cart
    return not ordered and now - first < 7 * DAY and now - last >= idle


def on_event(
    state: AbuseState | None, event: Event, cfg: AbuseConfig, scorer: Scorer | None = None
) -> Step:
    """Update the features; at a scoring moment, score and maybe flag."""
    if event.type not in INPUT_TYPES:
        return state, (), ()
    current = _prune(state or AbuseState(event.customer_id), event.ts)
    if event.type == "customer_flag_cleared":
        return _clear(current, event)
    updated, moment = _observe(current, event)
    if not moment:
        return updated, (), ()
    if scorer is None or not _may_flag(updated, event.ts, cfg) or not scorer.ready:
        return updated, (), ("abuse_scoring_moment",)
    x = features(updated, event.ts, cfg)
    score = scorer.score_one(x)
    if score < cfg.threshold:
        return updated, (), ("abuse_scoring_moment",)
    flag_id = f"flag-{event.customer_id}-{int(event.ts)}"
    flagged = replace(updated, flag=(flag_id, event.ts, event.ts + cfg.flag_ttl_s))
    body = {
        "event_id": flag_id, "type": "anomaly_flagged", "customer_id": event.customer_id,
        "ts": format_ts(event.ts), "flag_id": flag_id, "score": round(score, 4),
        "threshold": cfg.threshold, "model_version": cfg.model_version, "features": x,
        "drivers": scorer.drivers(x)[:8], "expires_at": format_ts(event.ts + cfg.flag_ttl_s),
    }  # fmt: skip
    return flagged, (body,), ("abuse_scoring_moment", "anomaly_flagged")


def _may_flag(s: AbuseState, now: float, cfg: AbuseConfig) -> bool:
    """Not while a flag is set, nor within the grace after a reviewer cleared one."""
    if blocks_incentives(s, now):
        return False
    return s.cleared_at is None or now - s.cleared_at >= cfg.clear_grace_s


def _observe(s: AbuseState, event: Event) -> tuple[AbuseState, bool]:
    """The state after ``event`` and whether it is a scoring moment."""
    body, ts = event.body, event.ts
    if event.type in CART_TYPES:
        cid = str(body["cart_id"])
        known = any(c[0] == cid for c in s.carts)
        if not known and event.type == "cart_item_added":
            return replace(s, carts=(*s.carts, (cid, ts, ts, False))[-MAX_ITEMS:]), True
        return replace(s, carts=tuple((i, a, ts if i == cid else b, o) for i, a, b, o in s.carts)), False
    if event.type == "order_placed":
        return _order(s, body, ts), True
    oid = str(body["order_id"])  # order_cancelled
    if not any(o == oid for o, _ in s.coupon_orders):
        return s, True
    return replace(s, coupon_cancels=(*s.coupon_cancels, ts)[-MAX_ITEMS:]), True


def _order(s: AbuseState, body: dict[str, Any], ts: float) -> AbuseState:
    cid = body.get("cart_id") or (s.carts[-1][0] if s.carts else None)
    carts = tuple((i, a, b, o or i == cid) for i, a, b, o in s.carts)
    total = float(body["total"])
    mean = s.mean_before_last
    if s.last_order is not None:  # fold the previous order into the running mean
        mean += (s.last_order[1] - mean) / s.orders
    coupons = s.coupon_orders
    if "coupon_code" in body:
        coupons = (*coupons, (str(body["order_id"]), ts))[-MAX_ITEMS:]
    return replace(s, carts=carts, coupon_orders=coupons, orders=s.orders + 1,
                   mean_before_last=mean, last_order=(ts, total))  # fmt: skip


def _prune(s: AbuseState, now: float) -> AbuseState:
    horizon = now - 30 * DAY
    return replace(
        s,
        carts=tuple(c for c in s.carts if c[1] >= horizon),
        coupon_orders=tuple(o for o in s.coupon_orders if o[1] >= horizon),
        coupon_cancels=tuple(t for t in s.coupon_cancels if t >= horizon),
    )


def _clear(s: AbuseState, event: Event) -> Step:
    wanted = event.body.get("flag_id")
    if s.flag is None or (wanted is not None and wanted != s.flag[0]):
        return s, (), ("anomaly_flag_clear_unmatched",)
    return replace(s, flag=None, cleared_at=event.ts), (), ("anomaly_flag_cleared",)


def due(state: AbuseState | None, cfg: AbuseConfig) -> float | None:
    """When the flag expires, if one is set."""
    return state.flag[2] if state is not None and state.flag is not None else None


def on_due(state: AbuseState | None, now: float, cfg: AbuseConfig) -> Step:
    if state is None or state.flag is None or now < state.flag[2]:
        return state, (), ()
    return replace(state, flag=None), (), ("anomaly_flag_expired",)


def blocks_incentives(state: AbuseState | None, now: float) -> bool:
    """Whether a flag withholds coupons and other incentives from this customer at ``now``."""
    return state is not None and state.flag is not None and state.flag[1] <= now < state.flag[2]
