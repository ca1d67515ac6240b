"""How far each input partition has been read, so wall-clock deadlines never fire on a
partial view of a customer (issue 12, point 2).

One customer's events are spread over three topics (browse, cart, order), each read at
its own pace. A deadline passed on the wall clock must not fire while an order placed
before it is still unread on a lagging topic. So a partition's deadlines fire at its
*horizon*: the earliest, over the three input topics, of how far that topic's partition
has been read, where

- a partition read up to its high watermark (nothing more is in the log) and quiet for
  ``IDLE_S`` (no record taken from it meanwhile) counts as read up to ``now``;
- otherwise (behind, or caught up but still receiving) it counts as read up to the latest *read time* among the records processed:
  a record's event time (its ``ts``), capped by its Kafka timestamp (create or append
  time), so a backlog stamped in the past holds deadlines back as it should, and a record
  stamped in the future cannot make a lagging partition look read; nothing processed
  yet: not at all.

Why "caught up" alone is not enough: a producer that is itself behind (an order producer
13 s late) keeps its partition at its end most of the time, and traffic stamped in the
past (a backlog being re-published, ``streamcrm verify``'s workload) does too. Counting
them as read up to ``now`` fired coupons for carts whose order was already appended
behind (verify, default run: 104 wrong coupons). While records keep arriving, their own
times say how far the topic has been read. A producer that stops sending for longer than
``IDLE_S`` cannot be seen from here: nothing unappended can be waited for. The cost in
steady state: a deadline waits for the slowest topic of its partition to show a later
time, or to be quiet for ``IDLE_S``.

The horizon is computed from what the ingest loop processes (the batch in hand included,
counted under the same lock as its processing, so a sweep never counts a batch not yet
applied), not from what was fetched: fetched records may still be dropped and read
again (see app/intake.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from streamcrm.events import parse_ts
from streamcrm.publish import end_of_stream

Key = tuple[str, int]  # (topic, partition)
Highwater = Callable[[str, int], int | None]
# The consumer's own read position of a partition nothing was processed from yet, when
# nothing of it is buffered or in hand (None: unknown).
Position = Callable[[str, int], int | None]
NEVER = float("-inf")
IDLE_S = 1.0  # a caught-up partition quiet this long counts as read up to now


def read_time(value: bytes | None, timestamp: float | None) -> float | None:
    """How far in time one record shows its partition was read. Pure.

    >>> read_time(b'{"ts": "2026-11-01T00:00:00Z"}', 1796000000.0)  # a backlog: its event time
    1793491200.0
    >>> read_time(b'{"ts": "9999-01-01T00:00:00Z"}', 1796000000.0)  # capped by its timestamp
    1796000000.0
    >>> read_time(b"not json", 1796000000.0) is None  # no event time: says nothing
    True
    """
    event: float | None = None
    try:
        body = orjson.loads(value or b"")
        ts = body.get("ts") if isinstance(body, dict) else None
        event = parse_ts(ts) if isinstance(ts, str) else None
    except (orjson.JSONDecodeError, ValueError, OverflowError):
        event = None
    if event is None:
        # Not the append time: on a backlog (or verify's ticks) it is far past the event
        # times, and would count the topic read up to now.
        return None
    return min(event, timestamp) if timestamp else event


def topic_horizon(
    now: float,
    *,
    latest: float | None,
    position: int | None,
    highwater: int | None,
    quiet_s: float = float("inf"),
) -> float:
    """How far one topic's partition has been read. Pure.

    ``quiet_s``: how long since a record of this partition was last taken.

    >>> topic_horizon(100.0, latest=90.0, position=7, highwater=7)  # at the end, quiet
    100.0
    >>> topic_horizon(100.0, latest=90.0, position=7, highwater=7, quiet_s=0.2)  # still busy
    90.0
    >>> topic_horizon(100.0, latest=90.0, position=5, highwater=7)  # two records behind
    90.0
    >>> topic_horizon(100.0, latest=None, position=None, highwater=3)  # nothing read yet
    -inf
    >>> topic_horizon(100.0, latest=None, position=None, highwater=0)  # an empty partition
    100.0
    """
    caught_up = highwater is not None and (position or 0) >= highwater
    if caught_up and quiet_s >= IDLE_S:
        return now
    return NEVER if latest is None else min(latest, now)


def partition_horizon(
    now: float,
    partition: int,
    topics: Iterable[str],
    latest: Mapping[Key, float],
    positions: Mapping[Key, int],
    highwater: Highwater,
    taken_at: Mapping[Key, float] | None = None,
    fallback: Position | None = None,
) -> float:
    """The earliest of the topics' horizons on one partition. Pure (given ``highwater``)."""
    taken = taken_at or {}
    return min(
        (
            topic_horizon(
                now,
                latest=latest.get((topic, partition)),
                position=positions.get((topic, partition))
                if (topic, partition) in positions or fallback is None
                else fallback(topic, partition),
                highwater=highwater(topic, partition),
                quiet_s=now - taken.get((topic, partition), NEVER),
            )
            for topic in topics
        ),
        default=now,
    )


class ReadHorizon:
    """What the ingest loop has taken, per input partition: the position after it and the
    latest record timestamp."""

    def __init__(
        self, topics: Iterable[str], highwater: Highwater, fallback: Position | None = None
    ) -> None:
        self.topics = tuple(sorted(topics))
        self.highwater = highwater
        self.fallback = fallback
        self.latest: dict[Key, float] = {}
        self.positions: dict[Key, int] = {}
        self.taken_at: dict[Key, float] = {}  # processing time a record was last taken

    def taking(self, messages: Iterable[Any], now: float) -> Callable[[int], float]:
        """Count a batch about to be processed as read; the horizon at ``now`` with it.

        Each partition is read in order, so its read time is its last record's (decoding
        every record's ``ts`` a second time cost 4.75 us a record here; one a partition
        a batch costs nothing measurable).
        """
        by_key: dict[Key, list[Any]] = {}
        for m in messages:
            by_key.setdefault((m.topic, m.partition), []).append(m)
        for key, taken in by_key.items():
            read = None
            for m in reversed(taken):  # the last record with a time says how far
                end = end_of_stream(m.headers)  # a control record: its event time, no value
                read = end if end is not None else read_time(m.value, m.timestamp)
                if read is not None:
                    break
            self.took(key, taken[-1].offset, read)
            if any(not m.headers or end_of_stream(m.headers) is None for m in taken):
                self.taken_at[key] = now  # busy: control records alone are not traffic
        return self.at(now)

    def took(self, key: Key, offset: int, read: float | None) -> None:
        if offset + 1 > self.positions.get(key, -1):
            self.positions[key] = offset + 1
        if read is not None and read > self.latest.get(key, NEVER):
            self.latest[key] = read

    def restart(self, topic: str, partition: int, offset: int, now: float) -> None:
        """The partition is read again from ``offset``: what was read after it is forgotten.

        It counts as busy from here: at its end right after a restart says nothing about
        records in flight (a restarted worker fired coupons for carts whose order was
        being appended: verify, one SIGKILL).
        """
        key = (topic, partition)
        self.positions[key] = offset
        self.latest.pop(key, None)
        self.taken_at[key] = now

    def at(self, now: float) -> Callable[[int], float]:
        """The horizon of each partition at ``now`` (for ``Processor.process``/``sweep``)."""

        def horizon(partition: int) -> float:
            return partition_horizon(
                now,
                partition,
                self.topics,
                self.latest,
                self.positions,
                self.highwater,
                self.taken_at,
                self.fallback,
            )

        return horizon
