"""Dead letters: the ``dead_letter`` event for a rejected record. Pure."""

from __future__ import annotations

import base64
from typing import Any

from streamcrm.events import InvalidEvent, format_ts
from streamcrm.ingest.batch import BatchResult, Record

MAX_ORIGINAL_BYTES = 512 * 1024
MAX_ORIGINAL_TEXT = 64 * 1024


def reject(result: BatchResult, record: Record, error: InvalidEvent, now: float) -> None:
    result.dead_by_reason[error.reason] += 1
    result.dead_letters.append((record.key, dead_letter(record, error, now)))


def dead_letter(record: Record, error: InvalidEvent, now: float) -> dict[str, Any]:
    """The ``dead_letter`` event for a rejected record (schemas/dead_letter.schema.json).

    Its id is derived from the record's position, so a redelivered bad record yields the
    same dead letter, which consumers dedupe by ``event_id``.
    """
    raw = record.value or b""
    # Bounded, so a dead letter always fits in a Kafka message whatever came in.
    kept = raw[:MAX_ORIGINAL_BYTES]
    try:
        text: str | None = raw.decode("utf-8") if len(raw) <= MAX_ORIGINAL_TEXT else None
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
        "detail": error.detail[:4096],
        "source": {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "key": None if record.key is None else record.key.decode("utf-8", "replace")[:1024],
        },
        "original_b64": base64.b64encode(kept).decode("ascii"),
        "original_text": text,
        "original_size": len(raw),
        "original_truncated": len(kept) < len(raw),
        "event_type": event_type[:256] if isinstance(event_type, str) else None,
        "customer_id": customer_id[:256] if isinstance(customer_id, str) else None,
    }
