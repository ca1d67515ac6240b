"""Input events: decode raw Kafka records into :class:`Event`, or say exactly why not.

Decoding is pure and total: every record either becomes an ``Event`` or raises
:class:`InvalidEvent` carrying a stable ``reason`` (the dead-letter reason codes in
schemas/README.md) and a human ``detail``.

>>> raw = b'{"event_id":"e1","type":"product_viewed","customer_id":"c1",'
>>> raw += b'"ts":"2026-11-01T08:00:00Z","channel":"web","sku":"s1","category":"shoes","price":59.9}'
>>> event = decode(raw, topic_kind="browse", key=b"c1")
>>> event.type, event.customer_id, event.ts
('product_viewed', 'c1', 1793520000.0)
>>> decode(raw, topic_kind="browse", key=b"c2")
Traceback (most recent call last):
...
streamcrm.events.InvalidEvent: key_mismatch: record key 'c2' != customer_id 'c1'
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jsonschema_rs
import orjson

from streamcrm.contract import (
    INPUT_TYPES,
    TOPIC_KIND_OF_TYPE,
    describe_error,
    validator,
)
from streamcrm.evolve import fast_init

# Reason codes are a public contract: dashboards and alerts key on them.
INVALID_JSON = "invalid_json"
NOT_AN_OBJECT = "not_an_object"
UNKNOWN_TYPE = "unknown_type"
WRONG_TOPIC = "wrong_topic"
SCHEMA_VIOLATION = "schema_violation"
KEY_MISMATCH = "key_mismatch"
TOO_LARGE = "too_large"
TS_OUT_OF_RANGE = "ts_out_of_range"
PROCESSING_ERROR = "processing_error"  # valid, but applying or deciding it raised
REASONS = (
    INVALID_JSON,
    NOT_AN_OBJECT,
    UNKNOWN_TYPE,
    WRONG_TOPIC,
    SCHEMA_VIOLATION,
    KEY_MISMATCH,
    TOO_LARGE,
    TS_OUT_OF_RANGE,
    PROCESSING_ERROR,
)

# Event time must fall in years 1970-9999 (UTC, after the offset is applied): everything
# downstream formats times as four-digit-year RFC 3339 and counts seconds since 1970.
MIN_TS = 0.0
MAX_TS = 253_402_300_799.999  # 9999-12-31T23:59:59.999Z
# A record larger than this is dead-lettered before it is parsed. An order with the
# schema's 500 lines is about 60 KB.
DEFAULT_MAX_RECORD_BYTES = 256 * 1024


class InvalidEvent(ValueError):
    """A record that cannot be applied; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.body = body


@fast_init  # one per record
@dataclass(frozen=True, slots=True)
class Event:
    """A validated input event. ``ts`` is event time in epoch seconds; ``body`` the JSON."""

    event_id: str
    type: str
    customer_id: str
    ts: float
    channel: str
    session_id: str | None
    body: dict[str, Any]


def parse_ts(text: str) -> float:
    """RFC 3339 text -> epoch seconds.

    >>> parse_ts("2026-11-01T08:00:00.500+01:00")
    1793516400.5
    """
    return datetime.fromisoformat(text).timestamp()


def format_ts(epoch_s: float) -> str:
    """Epoch seconds -> RFC 3339 UTC text with millisecond precision, always a 4-digit year.

    Total: a derived time past the representable range (say a coupon expiry 7 days after
    an event stamped 9999-12-31) saturates at the range's end rather than raising.

    >>> format_ts(1793520000.25)
    '2026-11-01T08:00:00.250Z'
    >>> format_ts(-62135596800.0), format_ts(1e300)
    ('0001-01-01T00:00:00.000Z', '9999-12-31T23:59:59.999Z')
    """
    if not _FIRST_TS <= epoch_s <= MAX_TS:  # also catches NaN
        return "9999-12-31T23:59:59.999Z" if not epoch_s < _FIRST_TS else _FIRST_TEXT
    # Same rounding as datetime.fromtimestamp(round(epoch_s, 3)), but strftime runs once
    # per distinct second: it was 9% of the decision path's time.
    fraction, whole = math.modf(round(epoch_s, 3))
    micros = round(fraction * 1e6)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    elif micros < 0:
        whole, micros = whole - 1, micros + 1_000_000
    return _second_prefix(int(whole)) + f"{micros // 1000:03d}Z"


_FIRST_TS = -62_135_596_800.0  # 0001-01-01T00:00:00Z
_FIRST_TEXT = "0001-01-01T00:00:00.000Z"


@functools.lru_cache(maxsize=4096)
def _second_prefix(epoch_s: int) -> str:
    d = datetime.fromtimestamp(epoch_s, tz=UTC)
    # Not strftime("%Y"): glibc does not pad years before 1000 to four digits.
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}."


def decode(
    raw: bytes | None,
    *,
    topic_kind: str,
    key: bytes | None,
    max_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> Event:
    """Decode and validate one record from the input topic of kind ``topic_kind``."""
    if raw is None:
        raise InvalidEvent(INVALID_JSON, "record has no value (null/tombstone)")
    if len(raw) > max_bytes:
        raise InvalidEvent(
            TOO_LARGE, f"record of {len(raw)} bytes is over the {max_bytes}-byte limit"
        )
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(INVALID_JSON, f"not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise InvalidEvent(NOT_AN_OBJECT, f"expected a JSON object, got {type(body).__name__}")
    event_type = body.get("type")
    kind = TOPIC_KIND_OF_TYPE.get(event_type) if isinstance(event_type, str) else None
    if kind is None or not isinstance(event_type, str):
        known = ", ".join(sorted(TOPIC_KIND_OF_TYPE))
        raise InvalidEvent(UNKNOWN_TYPE, f"type {event_type!r} is not one of: {known}", body)
    if kind != topic_kind:
        expected = ", ".join(INPUT_TYPES.get(topic_kind, ()))
        raise InvalidEvent(
            WRONG_TOPIC,
            f"{event_type} belongs on the {kind} topic; this topic takes {expected}",
            body,
        )
    try:
        validator(event_type).validate(body)
    except jsonschema_rs.ValidationError as exc:
        raise InvalidEvent(SCHEMA_VIOLATION, f"{event_type}: {describe_error(exc)}", body) from None
    except ValueError as exc:  # e.g. "Recursion limit reached" on a deeply nested value
        raise InvalidEvent(
            SCHEMA_VIOLATION, f"{event_type}: cannot validate ({exc})", body
        ) from None
    customer_id: str = body["customer_id"]
    key_text = key.decode("utf-8", "replace") if key is not None else None
    if key_text != customer_id:
        raise InvalidEvent(
            KEY_MISMATCH, f"record key {key_text!r} != customer_id {customer_id!r}", body
        )
    try:
        ts = parse_ts(body["ts"])
    except OverflowError:
        ts = math.nan  # e.g. 0001-01-01T00:00:00+01:00 is in year 0 in UTC
    except ValueError:
        raise InvalidEvent(
            SCHEMA_VIOLATION, f"ts: {body['ts']!r} is not a valid date-time", body
        ) from None
    if not MIN_TS <= ts <= MAX_TS:
        raise InvalidEvent(
            TS_OUT_OF_RANGE, f"ts: {body['ts']!r} is outside years 1970-9999 in UTC", body
        )
    return Event(
        event_id=body["event_id"],
        type=event_type,
        customer_id=customer_id,
        ts=ts,
        channel=body["channel"],
        session_id=body.get("session_id"),
        body=body,
    )
