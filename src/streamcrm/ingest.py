"""Raw input records -> new customer states, coupons, dead letters and counts. Pure.

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
from streamcrm.policies.abandoned_cart import AbandonConfig, after_event, fire_due, next_due
from streamcrm.state import DEFAULT_LIMITS, CustomerState, Limits, apply
from streamcrm.timers import DueIndex


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
    coupons: list[tuple[bytes, dict[str, Any]]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)  # audit log, inputs included
    applied: Counter[str] = field(default_factory=Counter)  # by event type
    outcomes: Counter[str] = field(default_factory=Counter)  # carts, abandoned, recovered, ...
    duplicates: int = 0
    received: Counter[str] = field(default_factory=Counter)  # by topic
    dead_by_reason: Counter[str] = field(default_factory=Counter)
    max_event_ts: float | None = None


Lookup = Callable[[str], CustomerState | None]
Owned = Callable[[int], bool]


class Processor:
    """The whole decision path of a worker, without I/O.

    It keeps only derived state: the timer index (rebuilt from the table after a restart)
    and, on the event clock, the watermark. ``clock="event"`` fires deadlines as event time
    passes them, between events, so a replay decides as live operation would;
    ``clock="wall"`` fires them at the ``now`` the shell passes (batches and sweeps).
    """

    def __init__(
        self,
        topic_kinds: Mapping[str, str],
        *,
        limits: Limits = DEFAULT_LIMITS,
        abandon: AbandonConfig | None = None,
        clock: str = "wall",
    ) -> None:
        if clock not in {"wall", "event"}:
            msg = f"clock must be 'wall' or 'event', not {clock!r}"
            raise ValueError(msg)
        self.topic_kinds = dict(topic_kinds)
        self.limits = limits
        self.abandon = abandon or AbandonConfig()
        self.clock = clock
        self.timers = DueIndex()
        self.watermark: float | None = None

    def process(
        self, records: Iterable[Record], lookup: Lookup, now: float, owned: Owned | None = None
    ) -> BatchResult:
        """Decode, validate and apply every record; invalid ones become dead-letter events."""
        result = BatchResult()
        states = result.states
        for record in records:
            result.received[record.topic] += 1
            try:
                event = decode(
                    record.value, topic_kind=self.topic_kinds[record.topic], key=record.key
                )
            except InvalidEvent as error:
                result.dead_by_reason[error.reason] += 1
                result.dead_letters.append((record.key, dead_letter(record, error, now)))
                continue
            if self.clock == "event" and (self.watermark is None or event.ts > self.watermark):
                self.watermark = event.ts
                self._fire(result, lookup, event.ts, owned)
            cid = event.customer_id
            current = states[cid][1] if cid in states else lookup(cid)
            transition = apply(current, event, now, self.limits)
            if not transition.applied:
                result.duplicates += 1
                continue
            new, outcomes = after_event(current, transition.state, event, self.abandon)
            states[cid] = (record.partition, new)
            self.timers.set(cid, partition=record.partition, due=next_due(new, self.abandon))
            result.applied[event.type] += 1
            result.outcomes.update(outcomes)
            if result.max_event_ts is None or event.ts > result.max_event_ts:
                result.max_event_ts = event.ts
        if self.clock == "wall":
            self._fire(result, lookup, now, owned)
        return result

    def sweep(self, lookup: Lookup, now: float, owned: Owned | None = None) -> BatchResult:
        """Fire what is due at ``now`` (wall clock) or at the watermark (event clock)."""
        result = BatchResult()
        at = now if self.clock == "wall" else self.watermark
        if at is not None:
            self._fire(result, lookup, at, owned)
        return result

    def rebuild(self, customers: Iterable[tuple[str, int, CustomerState]]) -> None:
        """Re-derive every pending deadline from (restored) table state."""
        self.timers = DueIndex()
        for customer_id, partition, state in customers:
            self.timers.set(customer_id, partition=partition, due=next_due(state, self.abandon))

    def _fire(self, result: BatchResult, lookup: Lookup, at: float, owned: Owned | None) -> None:
        states = result.states
        for cid, partition in self.timers.pop_due(at, owned):
            state = states[cid][1] if cid in states else lookup(cid)
            if state is None:
                continue
            fired = fire_due(state, at, self.abandon)
            states[cid] = (partition, fired.state)
            self.timers.set(cid, partition=partition, due=next_due(fired.state, self.abandon))
            result.coupons.extend((cid.encode(), coupon) for coupon in fired.coupons)
            result.outcomes.update(fired.outcomes)
            result.decisions.extend(fired.decisions)


def process_batch(
    records: Iterable[Record],
    topic_kinds: Mapping[str, str],
    lookup: Lookup,
    now: float,
    limits: Limits = DEFAULT_LIMITS,
) -> BatchResult:
    """One batch through a fresh :class:`Processor` on the wall clock (no pending timers)."""
    return Processor(topic_kinds, limits=limits).process(records, lookup, now)


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
