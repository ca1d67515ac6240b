"""Decoding and validation: every bad input gets its stable reason and a useful detail."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from streamcrm.events import InvalidEvent, decode, format_ts, parse_ts

GOOD: dict[str, Any] = {
    "event_id": "0b6f3c1e-1111-4c4c-9d9d-000000000001",
    "type": "cart_item_added",
    "customer_id": "c42",
    "ts": "2026-11-01T08:00:00.000Z",
    "channel": "web",
    "cart_id": "k1",
    "sku": "s1",
    "qty": 2,
    "unit_price": 19.99,
}


def reason_of(raw: bytes, kind: str = "cart", key: bytes | None = b"c42") -> InvalidEvent:
    with pytest.raises(InvalidEvent) as info:
        decode(raw, topic_kind=kind, key=key)
    return info.value


def with_(**changes: Any) -> bytes:
    body = {**GOOD, **changes}
    return orjson.dumps({k: v for k, v in body.items() if v is not ...})


def test_a_valid_event_decodes() -> None:
    event = decode(orjson.dumps(GOOD), topic_kind="cart", key=b"c42")
    assert (event.type, event.customer_id, event.channel, event.session_id) == (
        "cart_item_added",
        "c42",
        "web",
        None,
    )
    assert event.ts == parse_ts("2026-11-01T08:00:00Z")
    assert event.body["qty"] == 2


@pytest.mark.parametrize(
    ("raw", "reason", "in_detail"),
    [
        (b'{"event_id": "x", "type"', "invalid_json", "not valid JSON"),
        (b"\xff\xfe garbage", "invalid_json", "not valid JSON"),
        (b"[1, 2, 3]", "not_an_object", "list"),
        (with_(type="cart_exploded"), "unknown_type", "cart_exploded"),
        (with_(type=None), "unknown_type", "None"),
        (with_(qty=-1), "schema_violation", "qty"),
        (with_(qty=0), "schema_violation", "qty"),
        (with_(qty="2"), "schema_violation", "qty"),
        (with_(unit_price=-5), "schema_violation", "unit_price"),
        (with_(sku=""), "schema_violation", "sku"),
        (with_(cart_id=...), "schema_violation", "cart_id"),
        (with_(event_id=...), "schema_violation", "event_id"),
        (with_(ts="yesterday"), "schema_violation", "ts"),
        (with_(ts="2026-11-01T08:00:00"), "schema_violation", "ts"),  # no timezone
        (with_(channel="carrier-pigeon"), "schema_violation", "channel"),
    ],
)
def test_bad_input_gets_its_reason(raw: bytes, reason: str, in_detail: str) -> None:
    error = reason_of(raw)
    assert error.reason == reason
    assert in_detail in error.detail


def test_an_order_on_the_cart_topic_is_wrong_topic() -> None:
    order = {**GOOD, "type": "order_cancelled", "order_id": "o1"}
    error = reason_of(orjson.dumps(order), kind="cart")
    assert error.reason == "wrong_topic"
    assert "order topic" in error.detail


def test_key_must_equal_customer_id() -> None:
    assert reason_of(orjson.dumps(GOOD), key=b"c43").reason == "key_mismatch"
    assert reason_of(orjson.dumps(GOOD), key=None).reason == "key_mismatch"


def test_null_value_is_rejected() -> None:
    with pytest.raises(InvalidEvent) as info:
        decode(None, topic_kind="cart", key=b"c42")
    assert info.value.reason == "invalid_json"


def test_timestamps_round_trip_in_utc() -> None:
    assert format_ts(parse_ts("2026-11-01T09:30:00.125+01:00")) == "2026-11-01T08:30:00.125Z"
