"""Hostile records and faults inside the decision core: each is isolated at its record.

Every case here once stopped a worker or broke an output schema (issue 12). The rule:
a bad record is dead-lettered with a reason, the customer's state stays as it was, and
the next record is processed as if nothing happened.
"""

from __future__ import annotations

from itertools import count
from typing import Any

import orjson
import pytest

from streamcrm.contract import validator
from streamcrm.events import format_ts
from streamcrm.ingest import BatchResult, Processor, Record
from streamcrm.ingest import processor as ingest
from streamcrm.policies.contact import ContactConfig
from streamcrm.state import MAX_CART_LINES, CustomerState

KINDS = {"b": "browse", "c": "cart", "o": "order"}
NOW = 1_796_000_000.0  # 2026-11-30
DAY = 86_400.0
OFFSETS = count()  # one input partition, read in order


def view(ts: str, event_id: str = "v1", customer: str = "c1", **extra: Any) -> Record:
    body = {
        "event_id": event_id, "type": "product_viewed", "customer_id": customer, "ts": ts,
        "channel": "web", "sku": "s1", "category": "shoes", "price": 10.0, **extra,
    }  # fmt: skip
    return Record("b", 0, next(OFFSETS), customer.encode(), orjson.dumps(body))


def run(processor: Processor, records: list[Record], table: dict[str, CustomerState],
        now: float = NOW) -> BatchResult:  # fmt: skip
    result = processor.process(records, table.get, now)
    for cid, (_, state) in result.states.items():
        table[cid] = state
    return result


def check_outputs(result: BatchResult) -> None:
    for event_type, _, body in result.outputs():
        validator(event_type).validate(body)


@pytest.mark.parametrize("clock", ["wall", "event"])
@pytest.mark.parametrize(
    "ts",
    [
        "9999-12-31T23:00:00-01:00",  # year 10000 in UTC
        "0001-01-01T00:00:00+01:00",  # year 0 in UTC
        "1969-12-31T23:59:59Z",
    ],
)
def test_timestamps_outside_the_range_are_dead_lettered(ts: str, clock: str) -> None:
    processor, table = Processor(KINDS, clock=clock), {}
    result = run(processor, [view(ts, "bad"), view(format_ts(NOW - 60), "good")], table)
    assert result.dead_by_reason == {"ts_out_of_range": 1}
    assert sum(result.applied.values()) == 1
    assert table["c1"].events_applied == 1
    check_outputs(result)


def test_far_future_is_dead_lettered_on_the_wall_clock_but_replayable_on_event_time() -> None:
    late_9999 = view("9999-12-31T12:00:00Z", "far")
    wall = run(Processor(KINDS, clock="wall"), [late_9999], {})
    assert wall.dead_by_reason == {"ts_out_of_range": 1}
    assert "ahead of the processing clock" in wall.dead_letters[0][1]["detail"]
    skew = run(Processor(KINDS, clock="wall"), [view(format_ts(NOW + 2 * DAY), "2d")], {})
    assert skew.dead_by_reason == {"ts_out_of_range": 1}
    event_clock = Processor(KINDS, clock="event")
    table: dict[str, CustomerState] = {}
    result = run(event_clock, [late_9999, view(format_ts(NOW), "next", customer="c2")], table)
    assert sum(result.applied.values()) == 2 and not result.dead_letters
    check_outputs(result)


def test_a_value_nested_deeper_than_the_validator_allows_is_a_schema_violation() -> None:
    deep = b"[" * 300 + b"]" * 300
    raw = view(format_ts(NOW), "deep").value
    assert raw is not None
    record = Record("b", 0, 1, b"c1", raw.replace(b'"sku":"s1"', b'"sku":' + deep))
    result = run(Processor(KINDS), [record, view(format_ts(NOW), "ok")], {})
    assert result.dead_by_reason == {"schema_violation": 1}
    assert sum(result.applied.values()) == 1


def test_a_record_over_the_size_limit_is_dead_lettered_before_parsing() -> None:
    big = view(format_ts(NOW), "big", padding="x" * (2 << 20))
    result = run(Processor(KINDS), [big, view(format_ts(NOW), "ok")], {})
    assert result.dead_by_reason == {"too_large": 1}
    assert sum(result.applied.values()) == 1
    check_outputs(result)


def test_a_huge_cart_is_bounded_and_its_coupon_meets_the_schema() -> None:
    contact = ContactConfig(holdout_share=0.0)
    processor, table = Processor(KINDS, contact=contact, clock="wall"), {}
    start = NOW - 3 * DAY
    adds = []
    for i in range(MAX_CART_LINES + 20):
        body = {
            "event_id": f"a{i}", "type": "cart_item_added", "customer_id": "c1",
            "ts": format_ts(start + i), "channel": "web", "cart_id": "k1",
            "sku": f"s{i}", "qty": 1000, "unit_price": 999_999.0,
        }  # fmt: skip
        adds.append(Record("c", 0, i, b"c1", orjson.dumps(body)))
    again = dict(orjson.loads(adds[-1].value or b"{}"), event_id="again")
    adds.append(Record("c", 0, 10_000, b"c1", orjson.dumps(again)))  # qty past 1,000
    result = run(processor, adds, table)
    cart = table["c1"].cart
    assert cart is not None and len(cart.lines) == MAX_CART_LINES
    assert cart.lines[0].sku == "s20" and cart.lines[-1].qty == 1000
    assert result.outcomes["cart_lines_dropped"] == 20
    assert len(orjson.dumps(table["c1"])) < 1_000_000  # fits one Kafka message
    # Both stages were due at the batch's end: a value over the money maximum gets none.
    assert result.outcomes["suppressed_cart_value_out_of_range"] == 2 and not result.coupons
    check_outputs(result)


def test_an_event_that_raises_is_dead_lettered_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    processor, table = Processor(KINDS), {}
    run(processor, [view(format_ts(NOW - 10), "first")], table)
    before = table["c1"]
    real = ingest.after_event

    def fails_on_boom(*args: Any) -> Any:
        if args[2].event_id == "boom":
            raise ZeroDivisionError("a bug")
        return real(*args)

    monkeypatch.setattr(ingest, "after_event", fails_on_boom)
    result = run(processor, [view(format_ts(NOW), "boom"), view(format_ts(NOW), "after", "c2")],
                 table)  # fmt: skip
    assert table["c1"] == before
    assert result.dead_by_reason == {"processing_error": 1}
    letter = result.dead_letters[0][1]
    assert letter["detail"] == "product_viewed: ZeroDivisionError: a bug"
    assert letter["event_type"] == "product_viewed" and letter["customer_id"] == "c1"
    assert "c2" in table
    check_outputs(result)
    # Accounting: every record received is applied, a duplicate, or a dead letter.
    received = sum(result.received.values())
    assert received == sum(result.applied.values()) + result.duplicates + len(result.dead_letters)


def test_a_deadline_that_raises_is_dropped_not_spun(monkeypatch: pytest.MonkeyPatch) -> None:
    processor, table = Processor(KINDS, clock="wall"), {}
    add = {
        "event_id": "a1", "type": "cart_item_added", "customer_id": "c1",
        "ts": format_ts(NOW - DAY), "channel": "web", "cart_id": "k1", "sku": "s1",
        "qty": 1, "unit_price": 5.0,
    }  # fmt: skip
    monkeypatch.setattr(ingest, "fire_due", lambda *a: 1 / 0)
    result = run(processor, [Record("c", 0, next(OFFSETS), b"c1", orjson.dumps(add))], table)
    assert result.outcomes["timer_error"] == 1 and result.timer_errors[0][0] == "c1"
    assert processor.next_due() is None  # not re-armed: no error on every sweep
    assert processor.sweep(table.get, NOW + 1).timer_errors == []


def test_a_late_event_does_not_set_the_lifecycle_back() -> None:
    """A view stamped before an at-risk deadline that already fired (issue 12, point 4)."""
    processor, table = Processor(KINDS, clock="wall"), {}
    t0 = NOW - 200 * DAY
    order = {
        "event_id": "o1", "type": "order_placed", "customer_id": "c1", "ts": format_ts(t0),
        "channel": "web", "order_id": "o1", "total": 20.0,
        "lines": [{"sku": "s1", "qty": 1, "unit_price": 20.0}],
    }  # fmt: skip
    first = run(processor, [Record("o", 0, next(OFFSETS), b"c1", orjson.dumps(order))], table, now=t0)
    fired = processor.sweep(table.get, NOW)
    for cid, (_, state) in fired.states.items():
        table[cid] = state
    assert table["c1"].profile.lifecycle_stage == "churned"
    ids = [e["event_id"] for _, e in first.profile_events + fired.profile_events]
    for i in range(3):  # late views, each stamped back at the order's time
        late = run(processor, [view(format_ts(t0 + i), f"late{i}")], table)
        swept = processor.sweep(table.get, NOW + i)
        for cid, (_, state) in swept.states.items():
            table[cid] = state
        ids += [e["event_id"] for _, e in late.profile_events + swept.profile_events]
        assert table["c1"].profile.lifecycle_stage == "churned"
    assert len(ids) == len(set(ids)) == 3  # new, at_risk, churned: once each


def test_a_replay_longer_than_the_id_window_is_not_applied_again() -> None:
    """A crash replays from the last commit; one customer may have more events than the
    64 ids they remember (found by `streamcrm verify`: 65 replayed events applied 65 times)."""
    processor, table = Processor(KINDS, clock="wall"), {}
    records = [
        Record("b", 1, 100 + i, b"c1", view(format_ts(NOW - 500 + i), f"r{i}").value)
        for i in range(200)
    ]
    first = run(processor, records, table)
    assert sum(first.applied.values()) == 200
    state = table["c1"]
    again = run(processor, records[50:], table)  # redelivered from offset 150 on
    assert sum(again.applied.values()) == 0 and again.duplicates == 150
    assert table["c1"] == state
    # The same event under a new offset (a producer retry) is caught by its id.
    retry = Record("b", 1, 400, b"c1", records[-1].value)
    assert run(processor, [retry], table).duplicates == 1
