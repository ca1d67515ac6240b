"""Input records from Faust's consumer straight into the batches the decision core takes.

Faust hands every message through ``wait_first`` (two tasks and an ``asyncio.wait``), the
conductor, a channel queue and the stream iterator before an agent sees it: 22-25% of a
worker's busy main thread under the benchmark load (py-spy), paid per event, while the
decision core wants whole batches anyway. Here the consumer's fetch loop appends input
records to one buffer and the ingest loop takes everything buffered.

Everything else stays Faust's: group membership, partition assignment, the tables and
their changelogs, offsets, gaps and commits, and rebalancing. The rules are the ones
Faust's streams follow (``faust/streams.py``, ``Stream._c_aiter``):

- a message is *tracked* (pending ack) when the ingest loop takes it, and *acked* once
  its batch is committed: offsets are committed only for decisions that were sent, and a
  rebalance waits (``wait_empty``) for the batch in hand;
- a message fetched before a rebalance (older generation), or taken while flow control
  is suspended, is dropped untracked;
- the buffer is bounded: when full, the fetch loop waits for room and gives up on the
  message if a rebalance suspends the flow.

**A dropped message is always read again** (issue 12, point 5). Faust assumes a seek to
the committed offsets follows every drop, which is not so: its recovery
(``faust/tables/recovery.py``, ``on_recovery_completed``) resumes the input partitions,
then ``perform_seek()`` seeks them one by one (one OffsetFetch round trip each, 40 for
8 partitions of 3 inputs and 2 changelogs), and only at the end resets every
``_read_offset`` to the committed offset; then ``flow_control.resume()`` clears every
queue registered with ``manage_queue``, this buffer included. Records fetched from a
partition already sought (with live traffic the fetch returns at once) are offered,
then wiped, while the fetch position is past them; the next record is taken for a
*gap* (``_add_gap``: the offsets between the reset read offset and it), gaps count as
acked in ``_new_offset``, and the next commit passes records never applied. Reproduced
(tests/integration/test_delivery.py): a batch that crashes the ingest loop was skipped
on the 4th of 4 restarts under live traffic. So here:

- every dropped message leaves a *rewind* (the earliest dropped offset per partition);
- after any ``perform_seek()`` every input partition rewinds to its committed offset,
  and what the buffer holds of it is dropped (it will be read again);
- the fetch loop applies rewinds before its next fetch: in the consumer's thread it
  moves the position back to the rewind (never forward), resets the read offset to it
  and forgets the gaps from there on; until then it skips the partition's records at or
  past the rewind (the rest of a fetch already in hand);
- a record is taken only once its generation's recovery has sought the inputs, and never
  at or past a rewind still pending (``put`` rechecks after waiting for room): the wall
  clock's replay check (``state.replayed``) assumes a partition is applied in offset
  order, and one record applied ahead of those to be read again made it drop them.
  Reproduced under CPU load (tests/integration/test_delivery.py, 4 of 6 runs): right
  after the seek (rewind to 167) browse[7]@282 was taken alone and applied before
  167..281 were read again; 274..281 of the same customer then counted as duplicates.
  The traces fit a record held in ``put`` (a full buffer) across the seek that emptied
  the buffer; the check at ``take`` covers any other way in.

So the committed offset of a partition never passes a record that was not applied: the
offsets below it were acked (applied) or read again from an earlier position.

Written against faust-streaming 0.15.3 (pinned in pyproject.toml); ``_drain_messages`` is
that version's loop with the intake's branches added.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, cast

from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode import Service

from streamcrm.app.horizon import ReadHorizon

log = logging.getLogger(__name__)
_END = 2**63  # past any offset: the end of a gap interval to forget


class Intake:
    """A bounded buffer of input messages between Faust's fetch loop and the ingest loop."""

    def __init__(self, topics: set[str], limit: int, crash_marker: bytes | None = None) -> None:
        self.topics = frozenset(topics)
        self.limit = limit
        self.crash_marker = crash_marker  # config.Drills.crash_marker
        self.app: Any = None  # bound by install(): the app whose consumer feeds us
        self._buffer: deque[Any] = deque()
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self.dropped = 0  # messages dropped untracked (each read again: see rewinds)
        # Partition -> earliest offset dropped or to be read again; applied by the fetch
        # loop (IntakeConsumer) before its next fetch.
        self.rewinds: dict[Any, int] = {}
        self._marks: dict[Any, int] = {}  # per partition: rewinds asked for so far
        self.rewound = 0  # rewinds that moved a fetch position back
        # The generation whose recovery sought the inputs to their committed offsets
        # (restart_from): until then a fetch position may be anywhere (see take).
        self.sought: int | None = None
        # What the ingest loop took, for the wall-clock deadline horizon (app/horizon.py),
        # over every input: an empty partition's fetch responses carry high watermark 0,
        # so the sparse service topic holds deadlines only while it is unread or busy.
        self.reads = ReadHorizon(self.topics, highwater=lambda topic, partition: None)
        self.in_hand: list[Any] = []  # the batch the ingest loop took and has not acked

    def offer(self, message: Any) -> bool:
        """Buffer without waiting; False when full (the caller takes the slow path)."""
        if len(self._buffer) >= self.limit:
            return False
        self._buffer.append(message)
        self._ready.set()
        return True

    async def put(self, message: Any, suspended: Any) -> bool:
        """Wait for room; False (dropped, to be read again) if ``suspended`` is set first,
        or if a rewind at or before it was asked for while it waited (a seek to committed
        offsets empties the buffer, and this message must not be the first one read)."""
        while message.offset < self.rewinds.get(message.tp, _END):
            if self.offer(message):
                return True
            if suspended.is_set():
                break
            self._room.clear()
            waiters = {
                asyncio.ensure_future(self._room.wait()),
                asyncio.ensure_future(suspended.wait()),
            }
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
        self.drop([message])
        return False

    def rewind(self, tp: Any, offset: int) -> None:
        """Read ``tp`` again from ``offset`` (or earlier)."""
        self._marks[tp] = self._marks.get(tp, 0) + 1
        if offset < self.rewinds.get(tp, _END):
            self.rewinds[tp] = offset

    def rewound_to(self, pending: Mapping[Any, int], marks: Mapping[Any, int]) -> None:
        """The fetch loop applied ``pending`` (a copy of the rewinds taken with ``marks``):
        forget each one no drop or seek has asked for again since."""
        for tp, offset in pending.items():
            if self.rewinds.get(tp) == offset and self._marks.get(tp) == marks.get(tp):
                del self.rewinds[tp]

    def drop(self, messages: Iterable[Any]) -> None:
        """Let go of untracked messages: each partition is read again from the earliest."""
        for message in messages:
            self.dropped += 1
            self.rewind(message.tp, message.offset)

    def clear(self) -> None:
        """Forget what is buffered (called by Faust's flow control on revoke and resume)."""
        self.drop(self._buffer)
        self._buffer.clear()
        self._room.set()

    def restart_from(self, committed: Mapping[Any, int]) -> None:
        """After a seek to committed offsets: read these partitions again from them."""
        kept = [m for m in self._buffer if m.tp not in committed]
        self.drop(m for m in self._buffer if m.tp in committed)
        self._buffer = deque(kept)
        self._room.set()
        self.sought = self.app.consumer_generation_id if self.app is not None else None
        now = time.time()
        for tp, offset in committed.items():
            self.rewind(tp, offset)
            self.reads.restart(tp.topic, tp.partition, offset, now)

    def _idle_position(self, topic: str, partition: int) -> int | None:
        """The consumer's fetch position of a partition none of whose records is buffered
        or in hand (None otherwise, or unknown): for the horizon of a partition nothing
        was processed from since the worker started."""
        if any(
            m.topic == topic and m.partition == partition for m in (*self._buffer, *self.in_hand)
        ):
            return None
        return _fetch_position(self.app, TopicPartition(topic, partition))

    async def take(self, max_messages: int) -> list[Any]:
        """Everything buffered (up to ``max_messages``), tracked as pending ack; waits for one."""
        app = self.app
        while True:
            while not self._buffer:
                self._ready.clear()
                await self._ready.wait()
            buffer = self._buffer
            batch = [buffer.popleft() for _ in range(min(max_messages, len(buffer)))]
            self._room.set()
            generation = app.consumer_generation_id
            kept: list[Any] = []
            if not app.flow_control.is_active() or self.sought != generation:
                stale = batch  # suspended, or before the seek: positions not reset yet
            else:
                # In offset order per partition: one dropped holds back those after it.
                stale = []
                for m in batch:
                    if m.generation_id == generation and m.offset < self.rewinds.get(m.tp, _END):
                        kept.append(m)
                    else:
                        self.drop([m])
            self.drop(stale)
            if kept:
                self.in_hand = kept
                track = app.consumer.track_message
                for message in kept:
                    message.tracked = True
                    track(message)
                return kept

    def done(self, messages: list[Any]) -> None:
        """Ack a committed batch: Faust may now commit these offsets."""
        marker = self.crash_marker
        if marker is not None and any(marker in (m.value or b"") for m in messages):
            msg = "drill: STREAMCRM_DRILL_CRASH_MARKER seen, crashing before the offsets are acked"
            raise RuntimeError(msg)
        ack = self.app.consumer.ack
        message_out = self.app.sensors.on_message_out
        for message in messages:
            ack(message)
            message_out(message.tp, message.offset, message)
        self.in_hand = []

    def install(self, app: Any) -> None:
        """Feed this intake from ``app``'s consumer (call before the app starts)."""
        if app._consumer is not None:
            msg = "install the intake before the app's consumer is created"
            raise RuntimeError(msg)
        self.app = app
        app.intake = self
        self.reads.highwater = lambda topic, partition: _highwater(app, topic, partition)
        self.reads.fallback = self._idle_position
        app.transport.Consumer = IntakeConsumer  # the consumer is created after this
        app.flow_control.manage_queue(self)  # cleared with Faust's own queues


class IntakeConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer whose fetch loop hands input messages to the intake."""

    async def perform_seek(self) -> None:
        # faust-streaming 0.15.3 Consumer.perform_seek, then every input partition is
        # read again from its committed offset (see the module docstring).
        committed = await self.seek_to_committed()
        self._read_offset.update(
            {tp: o if o is not None and o >= 0 else None for tp, o in committed.items()}
        )
        self._committed_offset.update(
            {tp: o if o else None for tp, o in committed.items() if o is not None}
        )
        # Never committed: from the start (consumer_auto_offset_reset is "earliest"). Faust
        # leaves such a partition where it is, and a record fetched before the recovery
        # paused the inputs is then never delivered (getmany skips it as inactive).
        intake: Intake = cast(Any, self.app).intake
        intake.restart_from(
            {tp: o or 0 for tp, o in committed.items() if tp.topic in intake.topics}
        )

    async def _apply_rewinds(self, intake: Intake) -> None:
        """Move each rewound partition's fetch position back (never forward).

        The rewinds stay pending (records at or past them are neither offered nor taken)
        until the move is done: a record fetched from the old position must not reach the
        ingest loop before the partition is read again from the rewind."""
        pending, marks = dict(intake.rewinds), dict(intake._marks)
        assigned = self.assignment()
        targets = {tp: offset for tp, offset in pending.items() if tp in assigned}
        if not targets:
            intake.rewound_to(pending, marks)
            return
        thread = self._thread
        resumed: dict[Any, tuple[int | None, bool]] = await thread.call_thread(
            _rewind_positions, thread._ensure_consumer(), targets
        )
        intake.rewound_to(pending, marks)
        for tp, (resume_at, moved) in resumed.items():
            # The next record read is at resume_at: no gap before it, none remembered after.
            self._read_offset[tp] = resume_at or None
            gaps = self._gap.get(tp)
            if gaps and resume_at is not None:
                gaps.chop(resume_at, _END)
            intake.rewound += moved

    async def _drain_messages(self, fetcher: Any) -> None:  # noqa: PLR0912, PLR0915 - Faust's loop
        # faust-streaming 0.15.3 Consumer._drain_messages, plus the intake's branches.
        intake: Intake = cast(Any, self.app).intake
        offer, inputs, rewinds = intake.offer, intake.topics, intake.rewinds
        callback = self.app.topics.on_message
        getmany = self.getmany
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        flag_consumer_fetching = CONSUMER_FETCHING
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                if intake.rewinds:
                    await self._apply_rewinds(intake)
                rewinds = intake.rewinds  # pending until applied (the same dict throughout)
                set_flag(flag_consumer_fetching)
                ait = getmany(timeout=1.0)
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0
                        offset = message.offset
                        is_input = message.topic in inputs
                        if is_input and rewinds and offset >= rewinds.get(tp, _END):
                            continue  # fetched before its rewind: read again after it
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            if is_input:
                                if not (
                                    offer(message) or await intake.put(message, self.suspend_flow)
                                ):
                                    continue  # dropped and rewound: its offset was not read
                            else:
                                await self.wait_first(callback(message), self.suspend_flow.wait())
                            set_read_offset(tp, offset)
                    unset_flag(flag_consumer_fetching)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(flag_consumer_fetching)


def _highwater(app: Any, topic: str, partition: int) -> int | None:
    """The partition's end as the last fetch response gave it (None: not known yet)."""
    try:
        return int(app.consumer.highwater(TopicPartition(topic, partition)))
    except (AssertionError, KeyError, TypeError, ValueError, AttributeError):
        return None


def _fetch_position(app: Any, tp: Any) -> int | None:
    """aiokafka's fetch position of ``tp`` (a plain read, as Faust's own highwater is)."""
    try:
        consumer = app.consumer._thread._ensure_consumer()
        state = consumer._subscription.subscription.assignment.state_value(tp)
    except (AttributeError, KeyError, AssertionError):
        return None
    return int(state.position) if state is not None and state.has_valid_position else None


async def _rewind_positions(
    consumer: Any, targets: Mapping[Any, int]
) -> dict[Any, tuple[int | None, bool]]:
    """In the consumer's thread: (where each partition is read from next, whether it was
    moved back), after moving its position back to the target if it is past it. None: the
    position is being reset (to the committed or earliest offset, never past an unacked
    record), so it is left alone."""
    resumed: dict[Any, tuple[int | None, bool]] = {}
    assigned = consumer.assignment()
    for tp, target in targets.items():
        if tp not in assigned:
            continue
        try:
            position = await asyncio.wait_for(consumer.position(tp), timeout=1.0)
        except (TimeoutError, IllegalStateError):
            resumed[tp] = (None, False)
            continue
        if position > target:
            consumer.seek(tp, target)
            resumed[tp] = (target, True)
        else:
            resumed[tp] = (position, False)
    return resumed
