"""The intake's hand-off rules, with a stand-in for the few Faust objects it touches.

(The real consumer, group and rebalances are exercised by the integration tests.)
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition

from streamcrm.app.intake import Intake


class FakeApp:
    def __init__(self) -> None:
        self.consumer_generation_id = 1
        self.active = True
        self.tracked: list[int] = []
        self.acked: list[int] = []
        self.consumer = SimpleNamespace(
            track_message=lambda m: self.tracked.append(m.offset),
            ack=lambda m: self.acked.append(m.offset),
        )
        self.flow_control = SimpleNamespace(is_active=lambda: self.active)
        self.sensors = SimpleNamespace(on_message_out=lambda tp, offset, m: None)


def msg(offset: int, topic: str = "in", generation: int = 1) -> Any:
    return SimpleNamespace(
        topic=topic,
        tp=TopicPartition(topic, 0),
        offset=offset,
        generation_id=generation,
        tracked=False,
    )


def intake(limit: int = 10) -> tuple[Intake, FakeApp]:
    app = FakeApp()
    box = Intake({"in"}, limit=limit)
    box.app = app
    box.restart_from({})  # the generation's recovery has sought its inputs
    return box, app


async def test_takes_what_is_buffered_in_order_tracks_then_acks() -> None:
    box, app = intake()
    for offset in range(5):
        assert box.offer(msg(offset))
    batch = await box.take(3)
    assert [m.offset for m in batch] == [0, 1, 2]
    assert app.tracked == [0, 1, 2] and all(m.tracked for m in batch)
    assert app.acked == []  # nothing is acked before its batch is committed
    box.done(batch)
    assert app.acked == [0, 1, 2]
    assert [m.offset for m in await box.take(100)] == [3, 4]


async def test_messages_from_before_a_rebalance_are_left_untracked() -> None:
    box, app = intake()
    box.offer(msg(0, generation=1))
    box.offer(msg(1, generation=1))
    app.consumer_generation_id = 2
    box.restart_from({TopicPartition("in", 0): 1})  # the new generation's seek
    box.offer(msg(1, generation=2))  # the same offset, read again after the rebalance
    box.rewinds.clear()  # the fetch loop moved the position back to 1
    batch = await box.take(10)
    assert [(m.offset, m.generation_id) for m in batch] == [(1, 2)]
    assert app.tracked == [1] and box.dropped == 2


async def test_nothing_is_taken_while_flow_is_suspended() -> None:
    box, app = intake()
    app.active = False
    box.offer(msg(0))
    waiting = asyncio.ensure_future(box.take(10))
    await asyncio.sleep(0.01)
    assert not waiting.done() and box.dropped == 1 and app.tracked == []
    app.active = True
    box.offer(msg(1))  # fetched before the rewind to 0 was applied: not taken either
    await asyncio.sleep(0.01)
    assert not waiting.done() and box.dropped == 2
    box.rewinds.clear()  # applied: read again from 0
    box.offer(msg(0))
    assert [m.offset for m in await asyncio.wait_for(waiting, 1)] == [0]


async def test_a_full_buffer_refuses_offers_and_put_waits_for_room() -> None:
    box, _ = intake(limit=2)
    assert box.offer(msg(0)) and box.offer(msg(1))
    assert not box.offer(msg(2))
    suspended = asyncio.Event()
    put = asyncio.ensure_future(box.put(msg(2), suspended))
    await asyncio.sleep(0.01)
    assert not put.done()
    assert [m.offset for m in await box.take(1)] == [0]
    assert await asyncio.wait_for(put, 1) is True
    assert [m.offset for m in await box.take(10)] == [1, 2]
    assert box.rewinds == {}


async def test_a_put_given_up_on_suspension_is_rewound() -> None:
    box, _ = intake(limit=1)
    box.offer(msg(0))
    suspended = asyncio.Event()
    put = asyncio.ensure_future(box.put(msg(1), suspended))
    await asyncio.sleep(0.01)
    suspended.set()
    assert await asyncio.wait_for(put, 1) is False
    assert box.rewinds == {("in", 0): 1} and box.dropped == 1


async def test_every_drop_leaves_the_earliest_offset_to_read_again() -> None:
    box, app = intake()
    for offset in (5, 6, 7):
        box.offer(msg(offset))
    box.offer(msg(3, topic="other"))
    box.clear()  # as Faust's flow_control.resume() does after its seek
    assert box.rewinds == {("in", 0): 5, ("other", 0): 3} and box.dropped == 4
    box.rewinds.clear()
    box.offer(msg(9, generation=1))
    app.consumer_generation_id = 2
    box.sought = 2
    box.offer(msg(10, generation=2))
    box.offer(msg(4, topic="other", generation=2))
    # The stale one is read again, and 10 after it, never before it.
    assert [m.offset for m in await box.take(10)] == [4]
    assert box.rewinds == {("in", 0): 9}


async def test_a_seek_to_committed_drops_what_is_buffered_of_those_partitions() -> None:
    box, _ = intake()
    box.offer(msg(20))
    box.offer(msg(4, topic="other"))
    box.restart_from({TopicPartition("in", 0): 18})
    assert box.rewinds == {("in", 0): 18}
    assert [m.offset for m in await box.take(10)] == [4]


async def test_clear_forgets_the_buffer() -> None:
    box, _ = intake()
    box.offer(msg(7))
    box.clear()
    assert box.rewinds == {("in", 0): 7}
    box.rewinds.clear()  # applied by the fetch loop: 7 is read again
    box.offer(msg(7))
    assert [m.offset for m in await box.take(10)] == [7]


# The loss these guard against (tests/integration/test_delivery.py under CPU load): a
# record fetched from a position that Faust's recovery had not yet reset (browse[7]@282,
# committed 167) reached the ingest loop before the partition was read again from the
# committed offset. Its customer's state then recorded position 282, and when 274..281
# were read again, ``state.replayed`` dropped them as redeliveries: 8 events lost for
# good, counted as duplicates, with the consumer lag at 0.


async def test_no_record_is_taken_before_the_generations_seek_to_committed() -> None:
    box, app = intake()
    app.consumer_generation_id = 2  # a new assignment; its recovery is still seeking
    box.offer(msg(282, generation=2))  # from wherever the fetch position was
    waiting = asyncio.ensure_future(box.take(10))
    await asyncio.sleep(0.01)
    assert not waiting.done() and box.dropped == 1
    box.restart_from({TopicPartition("in", 0): 167})
    assert box.rewinds == {("in", 0): 167}
    box.rewinds.clear()  # applied: the partition is read again from 167
    box.offer(msg(167, generation=2))
    assert [m.offset for m in await asyncio.wait_for(waiting, 1)] == [167]


async def test_no_record_at_or_past_a_pending_rewind_is_taken() -> None:
    box, _ = intake()
    box.restart_from({TopicPartition("in", 0): 167})  # not yet applied by the fetch loop
    box.offer(msg(282))  # fetched from the old position
    box.offer(msg(3, topic="other"))
    assert [m.offset for m in await box.take(10)] == [3]
    assert box.rewinds == {("in", 0): 167}  # 282 is read again after 167..281


async def test_a_rewind_stays_pending_until_the_fetch_loop_has_applied_it() -> None:
    box, _ = intake()
    box.rewind(TopicPartition("in", 0), 50)
    pending, marks = dict(box.rewinds), dict(box._marks)
    box.rewind(TopicPartition("in", 0), 60)  # dropped while the seek to 50 was in flight
    box.rewound_to(pending, marks)
    assert box.rewinds == {("in", 0): 50}  # asked for again meanwhile: applied once more
    box.rewound_to(dict(box.rewinds), dict(box._marks))
    assert box.rewinds == {}


async def test_a_put_waiting_across_a_seek_to_committed_is_dropped_and_read_again() -> None:
    # The first fetch after a recovery fills the buffer; the fetch loop waits in put()
    # with the next record (checked against the rewinds before the seek recorded one).
    box, _ = intake(limit=1)
    box.offer(msg(298))
    put = asyncio.ensure_future(box.put(msg(299), asyncio.Event()))
    await asyncio.sleep(0.01)
    box.restart_from({TopicPartition("in", 0): 166})  # empties the buffer: room for 299
    assert await asyncio.wait_for(put, 1) is False
    assert box.rewinds == {("in", 0): 166} and box.dropped == 2
