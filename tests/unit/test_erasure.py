"""Right to erasure through the decision core: what is deleted, what is cancelled, and that
the erased state never comes back from late, redelivered or replayed records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streamcrm.contract import validator
from streamcrm.erasure import ERASURE_REQUESTED, Marker, expired, request_event
from streamcrm.events import format_ts
from streamcrm.ingest import BatchResult, Processor, Record
from streamcrm.policies.abandoned_cart import AbandonConfig, Stage
from streamcrm.policies.contact import ContactConfig
from streamcrm.state import CustomerState

KINDS = {"b": "browse", "c": "cart", "o": "order"}
TOPIC = {"browse": "b", "cart": "c", "order": "o"}
KIND_OF = {
    "product_viewed": "browse",
    "search_performed": "browse",
    "cart_item_added": "cart",
    "order_placed": "order",
    ERASURE_REQUESTED: "order",
}
T0 = 1_796_000_000.0
# Abandoned after 60 s, a coupon at 120 s; nobody held out, so the coupon is sent.
ABANDON = AbandonConfig(
    abandon_after=60.0,
    stages=(Stage("coupon", 120.0, True),),
)


def event(kind: str, customer: str, ts: float, n: int, **body: Any) -> dict[str, Any]:
    defaults: dict[str, dict[str, Any]] = {
        "product_viewed": {"sku": "s1", "category": "shoes", "price": 40.0},
        "search_performed": {"query": "red shoes size 44"},
        "cart_item_added": {"cart_id": f"k-{customer}", "sku": "s1", "qty": 1, "unit_price": 40.0},
        "order_placed": {"order_id": f"o{n}", "total": 40.0,
                         "lines": [{"sku": "s9", "qty": 1, "unit_price": 40.0}]},
        ERASURE_REQUESTED: {},
    }  # fmt: skip
    return {"event_id": f"e{n}", "type": kind, "customer_id": customer, "ts": format_ts(ts),
            "channel": "web", **defaults[kind], **body}  # fmt: skip


@dataclass
class Worker:
    """A Processor with its table and erasure markers, written back as the shell does."""

    clock: str = "wall"
    processor: Processor = field(init=False)
    table: dict[str, CustomerState] = field(default_factory=dict)
    markers: dict[str, Marker] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=dict)
    log: list[Record] = field(default_factory=list)  # every record sent, for redelivery

    def __post_init__(self) -> None:
        self.processor = Processor(
            KINDS, abandon=ABANDON, contact=ContactConfig(holdout_share=0.0), clock=self.clock
        )

    def record(self, body: dict[str, Any]) -> Record:
        topic = TOPIC[KIND_OF[body["type"]]]
        offset = self.offsets.get(topic, 0)
        self.offsets[topic] = offset + 1
        r = Record(topic, 0, offset, body["customer_id"].encode(), orjson.dumps(body))
        self.log.append(r)
        return r

    def send(self, bodies: list[dict[str, Any]], now: float) -> BatchResult:
        return self.deliver([self.record(b) for b in bodies], now)

    def deliver(self, records: list[Record], now: float) -> BatchResult:
        result = self.processor.process(records, self.table.get, now, erased=self.markers.get)
        self.write(result)
        return result

    def sweep(self, now: float) -> BatchResult:
        result = self.processor.sweep(self.table.get, now)
        self.write(result)
        return result

    def write(self, result: BatchResult) -> None:
        for event_type, _, body in result.outputs():
            validator(event_type).validate(body)
        for cid, (_, marker) in result.erasures.items():
            self.table.pop(cid, None)
            self.markers[cid] = Marker.from_bytes(marker.to_bytes())  # as the table stores it
        for cid, (_, state) in result.states.items():
            self.table[cid] = state


def abandoned_then_couponed(w: Worker, customer: str = "c1") -> dict[str, Any]:
    w.send([event("product_viewed", customer, T0, 1), event("cart_item_added", customer, T0, 2)],
           now=T0)  # fmt: skip
    (coupon,) = (c for _, c in w.sweep(T0 + 130).coupons)
    return coupon


def test_erasure_deletes_the_state_cancels_the_coupon_and_drops_the_deadline() -> None:
    w = Worker()
    coupon = abandoned_then_couponed(w)
    w.send([event("cart_item_added", "c1", T0 + 200, 3, sku="s2")], now=T0 + 200)  # re-arms
    assert w.processor.pending_timers() == 1
    result = w.send([event(ERASURE_REQUESTED, "c1", T0 + 300, 4, request_id="DSR-1")],
                    now=T0 + 301)  # fmt: skip
    assert "c1" not in w.table and "c1" not in result.states
    assert w.processor.pending_timers() == 0
    ((key, receipt),) = result.receipts
    assert key == b"c1" and receipt["customer_id"] == "c1"
    assert receipt["request_id"] == "DSR-1" and receipt["request_event_id"] == "e4"
    assert receipt["had_state"] is True and receipt["deadline_dropped"] is True
    assert {"kind": "coupon", "id": coupon["coupon_id"], "code": coupon["code"]} in receipt[
        "cancelled"
    ]
    assert w.markers["c1"].requested_at == T0 + 300
    # Much later, nothing fires for the old cart.
    assert not w.sweep(T0 + 10 * 86_400).coupons and not w.table


def test_the_receipt_carries_no_personal_data_but_the_id() -> None:
    w = Worker()
    abandoned_then_couponed(w)
    w.send([event("search_performed", "c1", T0 + 5, 5)], now=T0 + 5)
    result = w.send([event(ERASURE_REQUESTED, "c1", T0 + 300, 6)], now=T0 + 301)
    ((_, receipt),) = result.receipts
    text = orjson.dumps(receipt).decode()
    for personal in ("s1", "shoes", "k-c1", "40.0", "red shoes"):
        assert personal not in text, personal


def test_late_and_redelivered_events_of_the_erased_customer_are_dropped() -> None:
    w = Worker()
    abandoned_then_couponed(w)
    first = w.send([event(ERASURE_REQUESTED, "c1", T0 + 300, 3)], now=T0 + 301)
    # A cart event stamped before the request, read late from the cart topic:
    late = w.send([event("cart_item_added", "c1", T0 + 250, 4, sku="s3")], now=T0 + 302)
    assert late.outcomes["erased_event_dropped"] == 1 and late.duplicates == 1
    # Every record so far redelivered (a crash before the offsets were committed):
    # The request among them is carried out again (nothing is there: the same receipt).
    again = w.deliver(list(w.log[:-1]), now=T0 + 303)
    assert again.outcomes["erased_event_dropped"] == len(w.log) - 2
    assert [r["event_id"] for _, r in again.receipts] == [r["event_id"] for _, r in first.receipts]
    assert not again.states and "c1" not in w.table
    assert not w.sweep(T0 + 10 * 86_400).coupons


def test_the_erased_state_does_not_come_back_when_the_request_itself_is_redelivered() -> None:
    """Redelivered with nothing there: done again (same receipt id); after new events: not."""
    w = Worker()
    abandoned_then_couponed(w)
    first = w.send([event(ERASURE_REQUESTED, "c1", T0 + 300, 3)], now=T0 + 301)
    request = w.log[-1]
    again = w.deliver([request], now=T0 + 302)
    assert [r["event_id"] for _, r in again.receipts] == [r["event_id"] for _, r in first.receipts]
    assert again.receipts[0][1]["had_state"] is False
    w.send([event("product_viewed", "c1", T0 + 400, 5)], now=T0 + 400)
    fresh = w.table["c1"]
    late = w.deliver([request], now=T0 + 401)
    assert not late.receipts and w.table["c1"] == fresh


def test_events_after_the_request_start_a_new_empty_customer() -> None:
    w = Worker()
    abandoned_then_couponed(w)
    w.send([event("order_placed", "c1", T0 + 200, 3)], now=T0 + 200)
    w.send([event(ERASURE_REQUESTED, "c1", T0 + 300, 4)], now=T0 + 301)
    w.send([event("product_viewed", "c1", T0 + 400, 5, sku="s7")], now=T0 + 400)
    state = w.table["c1"]
    assert (state.first_seen, state.events_applied, state.order_count) == (T0 + 400, 1, 0)
    assert state.cart is None and state.last_contact is None
    assert [v.sku for v in state.recent_views] == ["s7"] and state.seen_event_ids == ("e5",)


def test_one_batch_with_events_the_request_and_new_events() -> None:
    w = Worker()
    result = w.send(
        [
            event("cart_item_added", "c1", T0, 1),
            event(ERASURE_REQUESTED, "c1", T0 + 10, 2),
            event("cart_item_added", "c1", T0 + 5, 3, sku="s-late"),  # the past: dropped
            event("product_viewed", "c1", T0 + 20, 4, sku="s-new"),
        ],
        now=T0 + 21,
    )
    assert set(result.erasures) == {"c1"} and result.receipts[0][1]["had_state"] is True
    state = result.states["c1"][1]
    assert state.cart is None and [v.sku for v in state.recent_views] == ["s-new"]
    assert w.table["c1"] == state


def test_on_the_event_clock_too() -> None:
    w = Worker(clock="event")
    w.send([event("cart_item_added", "c1", T0, 1),
            event(ERASURE_REQUESTED, "c1", T0 + 10, 2),
            event("product_viewed", "c2", T0 + 10_000, 3)], now=T0)  # fmt: skip
    late = w.send([event("cart_item_added", "c1", T0 + 5, 4)], now=T0)
    assert late.outcomes["erased_event_dropped"] == 1
    assert "c1" not in w.table
    assert all("c1" not in index._due for index in w.processor.timers.values())


def test_a_request_for_an_unknown_customer_still_gets_a_receipt() -> None:
    result = Worker().send([event(ERASURE_REQUESTED, "nobody", T0, 1)], now=T0 + 1)
    ((_, receipt),) = result.receipts
    assert receipt["had_state"] is False and receipt["cancelled"] == []
    assert receipt["deadline_dropped"] is False


def test_markers_expire_after_their_hold_and_round_trip() -> None:
    marker = Marker("c1", T0, T0 + 1, (("o", 3, 41),))
    assert Marker.from_bytes(marker.to_bytes()) == marker
    assert not expired(marker, T0 + 100, hold_s=100) and expired(marker, T0 + 101, hold_s=100)


def test_the_forget_command_event_meets_its_schema() -> None:
    body = request_event("c.1@x", T0, event_id="r1", request_id="DSR/2026-1")
    validator(ERASURE_REQUESTED).validate(body)
    assert not validator(ERASURE_REQUESTED).is_valid(request_event("a b", T0, event_id="r1"))


STEP_KINDS = ["product_viewed", "cart_item_added", "order_placed", "search_performed"]


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(STEP_KINDS), st.integers(-500, 500)), max_size=25),
    st.integers(0, 25),
    st.integers(1, 6),
    st.sampled_from(["wall", "event"]),
)
def test_erasure_forgets_exactly_what_was_stamped_before_it(
    steps: list[tuple[str, int]], at: int, batch: int, clock: str
) -> None:
    """Any events around one request, in any arrival order and batching: afterwards the
    customer is what the events stamped after the request, arriving after it, make of a
    new customer, and no event id or SKU of before the request is kept."""
    bodies = [event(kind, "c1", T0 + dt, n, sku=f"s{n}") if kind != "search_performed"
              else event(kind, "c1", T0 + dt, n, category=f"cat{n % 3}")
              for n, (kind, dt) in enumerate(steps)]  # fmt: skip
    at = min(at, len(bodies))
    request = event(ERASURE_REQUESTED, "c1", T0, 999)
    arrivals = [*bodies[:at], request, *bodies[at:]]
    w = Worker(clock=clock)
    for start in range(0, len(arrivals), batch):
        w.send(arrivals[start : start + batch], now=T0 + 1000)
    # Events are applied in arrival order (the event clock's reorder buffer is off here):
    # whatever arrived before the request is erased, and so is what arrives after it but
    # is stamped at or before it.
    kept = [b for b in bodies[at:] if b["ts"] > request["ts"]]
    reference = Worker(clock=clock)
    reference.send(kept, now=T0 + 1000)
    got, want = w.table.get("c1"), reference.table.get("c1")
    assert (got is None) == (want is None)
    if got is not None and want is not None:
        for name in ("first_seen", "last_seen", "cart", "recent_views", "order_count",
                     "total_spend", "events_applied", "search_categories"):  # fmt: skip
            assert getattr(got, name) == getattr(want, name), name
        assert set(got.seen_event_ids) == {b["event_id"] for b in kept}
    before = {b["event_id"] for b in bodies[:at]} | {
        b["event_id"] for b in bodies if b["ts"] <= request["ts"]
    }
    assert not before & set(got.seen_event_ids if got else ())
