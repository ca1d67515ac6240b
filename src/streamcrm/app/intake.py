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
  is suspended, is dropped untracked: whoever owns its partition next reads it again from
  the committed offset;
- the buffer is bounded: when full, the fetch loop falls back to Faust's own path, which
  waits for room and gives up if a rebalance suspends the flow.

Written against faust-streaming 0.15.3 (pinned in pyproject.toml); ``_drain_messages`` is
that version's loop with one branch added.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, cast

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode import Service


class Intake:
    """A bounded buffer of input messages between Faust's fetch loop and the ingest loop."""

    def __init__(self, topics: set[str], limit: int) -> None:
        self.topics = frozenset(topics)
        self.limit = limit
        self.app: Any = None  # bound by install(): the app whose consumer feeds us
        self._buffer: deque[Any] = deque()
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self.dropped = 0  # stale messages left for the partition's next owner

    def offer(self, message: Any) -> bool:
        """Buffer without waiting; False when full (the caller takes the slow path)."""
        if len(self._buffer) >= self.limit:
            return False
        self._buffer.append(message)
        self._ready.set()
        return True

    async def put(self, message: Any) -> None:
        """Wait for room (Faust's fetch loop abandons this if a rebalance starts)."""
        while not self.offer(message):
            self._room.clear()
            await self._room.wait()

    def clear(self) -> None:
        """Forget what is buffered (called by Faust's flow control when partitions are revoked)."""
        self._buffer.clear()
        self._room.set()

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
            if not app.flow_control.is_active():
                kept: list[Any] = []
            else:
                kept = [m for m in batch if m.generation_id == generation]
            self.dropped += len(batch) - len(kept)
            if kept:
                track = app.consumer.track_message
                for message in kept:
                    message.tracked = True
                    track(message)
                return kept

    def done(self, messages: list[Any]) -> None:
        """Ack a committed batch: Faust may now commit these offsets."""
        ack = self.app.consumer.ack
        message_out = self.app.sensors.on_message_out
        for message in messages:
            ack(message)
            message_out(message.tp, message.offset, message)

    async def on_message(self, message: Any) -> None:
        """The consumer callback: inputs here, everything else (changelogs) to Faust."""
        if message.topic in self.topics:
            await self.put(message)
        else:
            await self.app.topics.on_message(message)

    def install(self, app: Any) -> None:
        """Feed this intake from ``app``'s consumer (call before the app starts)."""
        if app._consumer is not None:
            msg = "install the intake before the app's consumer is created"
            raise RuntimeError(msg)
        self.app = app
        app.intake = self
        app.transport.Consumer = IntakeConsumer  # the consumer is created after this
        app.flow_control.manage_queue(self)  # cleared with Faust's own queues on revoke


class IntakeConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer whose fetch loop hands input messages to the intake."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.callback = cast(Any, self.app).intake.on_message

    async def _drain_messages(self, fetcher: Any) -> None:  # noqa: PLR0912, PLR0915 - Faust's loop
        # faust-streaming 0.15.3 Consumer._drain_messages, plus the `offer` branch.
        intake: Intake = cast(Any, self.app).intake
        offer, inputs = intake.offer, intake.topics
        callback = self.callback
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
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            if not (message.topic in inputs and offer(message)):
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
