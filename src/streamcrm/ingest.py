"""One batch of raw input records -> new customer states, dead letters and counts. Pure.

The Faust agent hands each batch here with a lookup into the customer table and the
processing time; it writes back what comes out. Keeping the loop here (not in the
agent) is what lets the replay, the tests and the worker share one code path.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from streamcrm.events import InvalidEvent, decode, format_ts
from streamcrm.state import DEFAULT_LIMITS, CustomerState, Limits, apply


@dataclass(frozen=True, slots=True)
class Record:
    """A Kafka record as the shell received it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(slots=True)
class BatchResult:
    """What a batch changed. ``states`` holds only customers whose state changed."""

    states: dict[str, tuple[int, CustomerState]] = field(default_factory=dict)
    dead_letters: list[tuple[bytes | None, dict[str, Any]]] = field(default_factory=list)
    applied: Counter[str] = field(default_factory=Counter)  # by event type
    duplicates: int = 0
    received: Counter[str] = field(default_factory=Counter)  # by topic
    dead_by_reason: Counter[str] = field(default_factory=Counter)
    max_event_ts: float | None = None


def process_batch(
    records: Iterable[Record],
    topic_kinds: Mapping[str, str],
    lookup: Callable[[str], CustomerState | None],
    now: float,
    limits: Limits = DEFAULT_LIMITS,
) -> BatchResult:
    """Decode, validate and apply every record; invalid ones become dead-letter events."""
    result = BatchResult()
    states = result.states
    for record in records:
        result.received[record.topic] += 1
        try:
            event = decode(record.value, topic_kind=topic_kinds[record.topic], key=record.key)
        except InvalidEvent as error:
            result.dead_by_reason[error.reason] += 1
            result.dead_letters.append((record.key, dead_letter(record, error, now)))
            continue
        cid = event.customer_id
        current = states[cid][1] if cid in states else lookup(cid)
        transition = apply(current, event, now, limits)
        if not transition.applied:
            result.duplicates += 1
            continue
        states[cid] = (record.partition, transition.state)
        result.applied[event.type] += 1
        if result.max_event_ts is None or event.ts > result.max_event_ts:
            result.max_event_ts = event.ts
    return result


def dead_letter(record: Record, error: InvalidEvent, now: float) -> dict[str, Any]:
    """The ``dead_letter`` event for a rejected record (schemas/dead_letter.schema.json).

    Its id is derived from the record's position, so a redelivered bad record yields the
    same dead letter, which consumers dedupe by ``event_id``.
    """
    raw = record.value or b""
    try:
        text: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    body = error.body or {}
    event_type = body.get("type")
    customer_id = body.get("customer_id")
    return {
        "event_id": f"dl:{record.topic}:{record.partition}:{record.offset}",
        "type": "dead_letter",
        "ts": format_ts(now),
        "reason": error.reason,
        "detail": error.detail,
        "source": {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "key": None if record.key is None else record.key.decode("utf-8", "replace"),
        },
        "original_b64": base64.b64encode(raw).decode("ascii"),
        "original_text": text,
        "event_type": event_type if isinstance(event_type, str) else None,
        "customer_id": customer_id if isinstance(customer_id, str) else None,
    }
