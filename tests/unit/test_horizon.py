"""The read horizon: how far every input topic's partition has been processed."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson

from streamcrm.app.horizon import IDLE_S, NEVER, ReadHorizon
from streamcrm.events import format_ts
from streamcrm.publish import END_OF_STREAM_HEADER

NOW = 1_796_000_000.0
TOPICS = ("browse", "cart", "order")


def record(topic: str, offset: int, ts: float, partition: int = 0) -> Any:
    value = orjson.dumps({"ts": format_ts(ts)})
    return SimpleNamespace(
        topic=topic, partition=partition, offset=offset, value=value, timestamp=NOW, headers=None
    )


def tracker(ends: dict[tuple[str, int], int]) -> ReadHorizon:
    return ReadHorizon(TOPICS, highwater=lambda topic, partition: ends.get((topic, partition)))


def test_a_lagging_topic_holds_its_partition_back_to_the_event_time_read() -> None:
    ends = {("browse", 0): 0, ("cart", 0): 2, ("order", 0): 5}
    reads = tracker(ends)
    horizon = reads.taking([record("cart", 0, NOW - 50), record("cart", 1, NOW - 40)], NOW)
    assert horizon(0) == NEVER  # nothing of the order partition processed yet
    horizon = reads.taking([record("order", 2, NOW - 300)], NOW)
    assert horizon(0) == NOW - 300  # order behind; cart at its end but busy; browse empty
    horizon = reads.taking([record("order", 4, NOW - 10)], NOW)
    assert horizon(0) == NOW - 40  # every topic at its end, records still arriving
    assert reads.at(NOW + IDLE_S)(0) == NOW + IDLE_S  # ... and then quiet


def test_a_late_producer_holds_deadlines_back_while_it_keeps_sending() -> None:
    """The order producer is 13 s behind: its partition is at its end, but busy."""
    ends = {("browse", 0): 0, ("cart", 0): 1, ("order", 0): 1}
    reads = tracker(ends)
    reads.taking([record("cart", 0, NOW - 0.5)], NOW)
    for second in range(5):
        ends[("order", 0)] = second + 1
        horizon = reads.taking([record("order", second, NOW + second - 13)], NOW + second)
        assert horizon(0) == NOW + second - 13


def test_an_unknown_end_is_not_caught_up_and_other_partitions_are_separate() -> None:
    reads = tracker({("browse", 1): 0, ("cart", 1): 0, ("order", 1): 0})
    assert reads.at(NOW)(1) == NOW
    assert reads.at(NOW)(0) == NEVER  # no fetch has told the ends of partition 0 yet


def test_a_future_stamped_record_reads_no_further_than_its_kafka_timestamp() -> None:
    reads = tracker({("browse", 0): 0, ("cart", 0): 0, ("order", 0): 9})
    assert reads.taking([record("order", 3, NOW + 86_400)], NOW + 5)(0) == NOW


def test_a_seek_back_forgets_what_was_read_after_it() -> None:
    reads = tracker({("browse", 0): 0, ("cart", 0): 0, ("order", 0): 9})
    reads.taking([record("order", 8, NOW - 1)], NOW)
    assert reads.at(NOW + IDLE_S)(0) == NOW + IDLE_S
    later = NOW + IDLE_S
    reads.restart("order", 0, 3, later)
    assert reads.at(NOW)(0) == NEVER
    reads.restart("order", 0, 9, later)  # sought to its end: busy until quiet for IDLE_S
    assert reads.at(later + 0.5)(0) == NEVER
    assert reads.at(later + IDLE_S)(0) == later + IDLE_S


def test_control_records_read_to_their_event_time_and_bad_records_to_none() -> None:
    """verify's ticks carry an event time in a header; their append time is not one."""
    reads = tracker({("browse", 0): 0, ("cart", 0): 0, ("order", 0): 9})
    tick = SimpleNamespace(
        topic="order", partition=0, offset=4, value=b"", timestamp=NOW,
        headers=[(END_OF_STREAM_HEADER, repr(NOW - 600).encode())],
    )  # fmt: skip
    assert reads.taking([record("order", 3, NOW - 900), tick], NOW)(0) == NOW - 600
    bad = SimpleNamespace(
        topic="order", partition=0, offset=5, value=b"{", timestamp=NOW, headers=None
    )
    assert reads.taking([record("order", 5, NOW - 300), bad], NOW)(0) == NOW - 300


def test_control_records_alone_do_not_keep_a_partition_busy() -> None:
    ends = {("browse", 0): 0, ("cart", 0): 0, ("order", 0): 2}
    reads = tracker(ends)
    reads.taking([record("order", 0, NOW - 900)], NOW)
    for second in range(1, 4):  # a tick a second after the last event, as verify sends
        ends[("order", 0)] = second + 1
        tick = SimpleNamespace(
            topic="order", partition=0, offset=second, value=b"", timestamp=NOW + second,
            headers=[(END_OF_STREAM_HEADER, repr(NOW - 900).encode())],
        )  # fmt: skip
        horizon = reads.taking([tick], NOW + second)
    assert horizon(0) == NOW + 3  # quiet since the last event: read up to now
