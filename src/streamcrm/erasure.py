"""Right to erasure: what forgetting a customer deletes, cancels and remembers. Pure.

A ``customer_erasure_requested`` (on the order topic, ordered with the customer's orders
and consent changes) turns into three things, which the shell writes
(:mod:`streamcrm.app.erasure`):

- the customer's table entry is deleted (a changelog tombstone, so a restart or a
  handover cannot bring it back), with its Redis snapshot, pending deadline and dedupe
  memory (event ids and offsets live in the state, so they go with it);
- a :class:`Marker`: the id, the request's time and the customer's input offsets, kept
  for ``hold_s`` (default 7 days) in its own changelog-backed table and then deleted.
  It is what stops the erased state coming back: the three input topics are ordered per
  topic, not across topics, so a browse or cart event of the customer stamped before
  the request can still be unread when the request is applied, and a crash redelivers
  every record after the last committed offset. Those are dropped (:func:`predates`);
  events stamped after the request start a new, empty customer;
- a ``customer_erased`` receipt (schemas/customer_erased.schema.json): no personal data
  but the id; it lists the open coupon and offers it cancels.

>>> from streamcrm.events import Event
>>> request = Event("r1", ERASURE_REQUESTED, "c1", 1000.0, "other", None, {})
>>> marker, receipt = erase(None, request, ("o", 2, 17), now=1001.0, hold_s=60.0)
>>> receipt["had_state"], receipt["cancelled"], receipt["marker_until"]
(False, [], '1970-01-01T00:17:41.000Z')
>>> predates(marker, ts=999.0), predates(marker, ts=1000.5)
(True, False)
>>> predates(marker, ts=1000.5, position=("o", 2, 17))  # the request itself, redelivered
True
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from streamcrm.decisions import winback_offer_id
from streamcrm.events import Event, format_ts
from streamcrm.state import CustomerState

ERASURE_REQUESTED = "customer_erasure_requested"
ERASED = "customer_erased"
# Long enough for any input topic's lag, a consumer group's redelivery after a crash or
# a re-published backlog; short enough that the id does not stay for good.
DEFAULT_HOLD_S = 7 * 86_400.0
ERASED_STORES = ("customer_state", "changelog", "redis_snapshot", "deadlines", "dedupe_memory")

Position = tuple[str, int, int]  # (topic, partition, offset) of an input record


@dataclass(frozen=True, slots=True)
class Marker:
    """What is remembered of an erased customer, for ``hold_s`` after the erasure."""

    customer_id: str
    requested_at: float  # the request's event time: events stamped at or before it are dropped
    erased_at: float  # processing time of the erasure: the hold counts from here
    offsets: tuple[Position, ...] = ()  # the request's position and the state's last offsets

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "customer_id": self.customer_id,
                "requested_at": self.requested_at,
                "erased_at": self.erased_at,
                "offsets": self.offsets,
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> Marker:
        data = orjson.loads(raw)
        return cls(
            customer_id=data["customer_id"],
            requested_at=float(data["requested_at"]),
            erased_at=float(data["erased_at"]),
            offsets=tuple((str(t), int(p), int(o)) for t, p, o in data.get("offsets", ())),
        )


def request_event(
    customer_id: str, now: float, *, event_id: str, request_id: str | None = None
) -> dict[str, Any]:
    """The ``customer_erasure_requested`` that ``streamcrm forget`` publishes, stamped ``now``.

    >>> request_event("c1", 0.0, event_id="e1")["ts"]
    '1970-01-01T00:00:00.000Z'
    """
    event: dict[str, Any] = {
        "event_id": event_id,
        "type": ERASURE_REQUESTED,
        "customer_id": customer_id,
        "ts": format_ts(now),
        "channel": "other",
    }
    if request_id is not None:
        event["request_id"] = request_id
    return event


def predates(marker: Marker | None, ts: float, position: Position | None = None) -> bool:
    """Is this event of the erased customer's past, to be dropped rather than applied?

    Stamped at or before the request (late on another topic, or redelivered), or at an
    input position already applied before the erasure (``position`` on the wall clock,
    where a partition is applied in offset order; the event clock orders by time only).
    """
    if marker is None:
        return False
    if ts <= marker.requested_at:
        return True
    if position is None:
        return False
    topic, partition, offset = position
    return any(t == topic and p == partition and offset <= o for t, p, o in marker.offsets)


def needed(
    marker: Marker | None, state: CustomerState | None, ts: float, position: Position | None
) -> bool:
    """Should this erasure request be carried out (again)?

    Yes unless it is of an erasure already done (:func:`predates`) and the customer
    since started afresh. A request redelivered after a crash is carried out again when
    nothing or the old state is there: its tombstone or receipt may not have reached
    Kafka, and doing it twice writes the same tombstone and the same receipt id. A new
    customer's events are all stamped after the request (``first_seen`` later), so a
    redelivered request never erases them.
    """
    if not predates(marker, ts, position):
        return True
    assert marker is not None  # predates is False without a marker
    return state is None or state.first_seen <= marker.requested_at


def expired(marker: Marker, now: float, hold_s: float = DEFAULT_HOLD_S) -> bool:
    """Has the marker been kept its full hold, so it may be deleted too?"""
    return now >= marker.erased_at + hold_s


def erase(
    state: CustomerState | None,
    request: Event,
    position: Position,
    now: float,
    *,
    hold_s: float = DEFAULT_HOLD_S,
    deadline_pending: bool = False,
    offer_window_s: float = 86_400.0,
) -> tuple[Marker, dict[str, Any]]:
    """The marker to keep and the receipt to publish for one erasure request.

    ``deadline_pending``: whether the customer had a deadline the index now drops (the
    caller knows it from :func:`streamcrm.decisions.next_due`); ``offer_window_s``: how
    long an offer stays open (the deployment's ``OfferConfig.buy_window_s``).
    """
    kept = tuple(state.offsets) if state is not None else ()
    offsets = (*(o for o in kept if o[:2] != position[:2]), position)
    marker = Marker(request.customer_id, request.ts, now, offsets)
    digest = hashlib.sha256(request.event_id.encode()).hexdigest()[:24]
    receipt = {
        "event_id": f"erased-{digest}",
        "type": ERASED,
        "customer_id": request.customer_id,
        "ts": format_ts(now),
        "request_event_id": request.event_id,
        "request_id": request.body.get("request_id"),
        "requested_at": format_ts(request.ts),
        "had_state": state is not None,
        "erased": list(ERASED_STORES),
        "cancelled": [] if state is None else cancelled(state, request.ts, offer_window_s),
        "deadline_dropped": deadline_pending,
        "marker_until": format_ts(now + hold_s),
    }
    return marker, receipt


def cancelled(state: CustomerState, at: float, offer_window_s: float) -> list[dict[str, Any]]:
    """The coupon and offers still open at ``at``: the last abandoned-cart message if it
    carries a code not yet expired (sent, not held out), the latest offer while its buy
    window (``offer_window_s``) is open, and the win-back of an at-risk episode not ended by an order.

    Only these are known by id: the state keeps the latest message and offer, not every
    one ever sent (older codes expire on their own, ``coupon_ttl`` after they were sent).
    """
    out: list[dict[str, Any]] = []
    contact = state.last_contact
    if (
        contact is not None
        and contact.code is not None
        and not contact.holdout
        and (contact.expires_at is None or contact.expires_at > at)
    ):
        out.append({"kind": "coupon", "id": contact.coupon_id, "code": contact.code})
    offer = state.offer
    if offer is not None and offer.at + offer_window_s > at:
        out.append({"kind": "offer", "id": offer.offer_id, "code": None})
    sent = state.profile.winback_sent_at
    if sent is not None and (state.last_order_at is None or sent > state.last_order_at):
        out.append({"kind": "offer", "id": winback_offer_id(state), "code": None})
    return out
