"""The worker's side of the learner exchange (``--share-learning``): every
``share_every_s`` publish what this worker learned to the learning topic and merge the
other workers' deltas; checkpoints record where the exchange stood; a handover resumes
from the adopted checkpoint's point. Shell only: the rules are in
:mod:`streamcrm.sharing.learners` and :mod:`streamcrm.sharing.handover`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import faust
from aiokafka.errors import KafkaError

from streamcrm.app.learner_store import Write, model_key, sharing_key
from streamcrm.learning.river_state import BadState
from streamcrm.sharing import handover
from streamcrm.sharing.kafka import OWN, KafkaTransport, learning_topic
from streamcrm.sharing.learners import Peer, start

if TYPE_CHECKING:
    from streamcrm.config import Settings
    from streamcrm.ingest import Processor

log = logging.getLogger(__name__)

RECEIVE_WAIT_S = 0.5  # longest a read of the learning topic waits for a delta


@dataclass(slots=True)
class SharingStats:
    """What /stats shows under ``sharing``."""

    sender: str = ""
    deltas_sent: int = 0
    bytes_sent: int = 0
    deltas_merged: int = 0
    deltas_rejected: int = 0
    records_read: int = 0
    own_skipped: int = 0  # of records_read: this worker's own deltas, not decoded
    bytes_read: int = 0
    last_delay_s: float | None = None  # publish (sender's clock) to merged here
    max_delay_s: float = 0.0
    resumed_at: list[int] = field(default_factory=list)  # offsets adopted checkpoints gave

    def as_dict(self) -> dict[str, Any]:
        return {
            "sender": self.sender,
            "deltas_sent": self.deltas_sent,
            "bytes_sent": self.bytes_sent,
            "deltas_merged": self.deltas_merged,
            "deltas_rejected": self.deltas_rejected,
            "records_read": self.records_read,
            "own_skipped": self.own_skipped,
            "bytes_read": self.bytes_read,
            "last_delay_s": self.last_delay_s,
            "max_delay_s": round(self.max_delay_s, 3),
            "handovers_resumed": len(self.resumed_at),
            "resumed_at_offset": self.resumed_at[-1] if self.resumed_at else None,
        }


class WorkerSharing:
    def __init__(self, settings: Settings, processor: Processor) -> None:
        self.processor = processor
        self.base = f"{settings.app_id}.{uuid.uuid4().hex[:12]}"
        self.incarnation = 0
        self.peer = Peer(self.base)
        self.settings = settings
        self._transport: KafkaTransport | None = None  # aiokafka clients need the loop
        self.offset = 0  # next learning-topic offset to read: all before it is merged
        self.epoch = 0  # bumped by a handover: a fetch begun before it is dropped
        self.pending: list[dict[str, Any]] = []  # exported, still to publish
        self.stats = SharingStats(sender=self.base)
        self.started = False
        self._starting, self._publishing = asyncio.Lock(), asyncio.Lock()
        self.recovered = False  # set by the first recovery (app/agents.py)
        self.moved = False  # a handover set the read position before the start
        start(processor.learners)

    @property
    def transport(self) -> KafkaTransport:
        assert self._transport is not None, "started first"
        return self._transport

    async def start(self) -> None:
        async with self._starting:  # the timers and the recovery may all ask at once
            if self.started:
                return
            settings = self.settings
            transport = KafkaTransport(
                settings.broker, learning_topic(settings.app_id), settings.kafka_security,
                fetch_max_wait_ms=settings.fetch_max_wait_ms,
            )  # fmt: skip
            await transport.start(from_offset=self.offset if self.moved else None)
            self._transport, self.started = transport, True

    async def stop(self) -> None:
        if self.started:
            self.started = False
            await self.transport.stop()

    def export(self) -> None:
        """Take what was learned since the last export (synchronously, so a checkpoint
        snapshot taken right after holds exactly the deltas ``seen`` lists)."""
        delta = self.peer.export(self.processor.learners)
        if delta is not None:
            delta["at"] = time.time()
            self.pending.append(delta)

    async def publish(self) -> None:
        if self.pending and not self.started:
            await self.start()
        async with self._publishing:  # one at a time, in sequence order
            while self.pending:
                delta = self.pending[0]
                before = self.transport.bytes
                try:
                    await self.transport.publish(str(delta["worker"]), delta)
                except KafkaError as exc:  # kept, in order: the next exchange retries
                    log.warning("could not publish a learner delta (%d pending): %s",
                                len(self.pending), exc)  # fmt: skip
                    return
                self.pending.pop(0)
                self.stats.deltas_sent += 1
                self.stats.bytes_sent += self.transport.bytes - before

    async def send(self) -> None:
        """Publish what was learned since the last export."""
        self.export()
        await self.publish()

    async def receive(self, timeout_s: float) -> None:
        """Merge whatever arrived (waiting at most ``timeout_s`` for something)."""
        if not self.started:
            await self.start()
        epoch = self.epoch
        # Keyed by sender: this incarnation's own deltas are skipped unread (the merge
        # would skip them); an earlier incarnation's are merged, as the merge would.
        records = await self.transport.fetch_records(timeout_s, own=self.peer.worker)
        if epoch != self.epoch or not records:
            return  # a handover moved the read position meanwhile: re-read from there
        now = time.time()
        for offset, delta in records:  # no await from here: merges and offset agree
            self.stats.records_read += 1
            if delta is OWN:
                self.stats.own_skipped += 1
                self.offset = offset + 1
                continue
            try:
                merged = self.peer.merge(self.processor.learners, delta)
            except BadState as exc:
                self.stats.deltas_rejected += 1
                log.warning("learning topic offset %d: rejected: %s", offset, exc)
                merged = False
            if merged:
                self.stats.deltas_merged += 1
                at = delta.get("at")
                if isinstance(at, float):
                    self.stats.last_delay_s = round(now - at, 3)
                    self.stats.max_delay_s = max(self.stats.max_delay_s, now - at)
            self.offset = offset + 1
        self.stats.bytes_read = self.transport.bytes_read

    def checkpoint_records(self, plan: list[Write]) -> list[Write]:
        """A sharing record after each model record of ``plan`` (call :meth:`export` just
        before the snapshot ``plan`` was taken from, with no await between)."""
        out: list[Write] = []
        for partition, key, value in plan:
            out.append((partition, key, value))
            if key == model_key(partition) and value is not None:
                seen = dict(self.peer.seen)
                rec = handover.record(value, self.offset, seen, self.processor.learners.rfm)
                out.append((partition, sharing_key(partition), rec))
        return out

    def adopted(self, model: bytes | None, blob: bytes | None) -> bool:
        """After the processor's learners were replaced by a checkpoint's (``model``):
        resume the exchange from that checkpoint. False: no usable sharing record, the
        caller moves the read position to the topic's end (:meth:`to_end`)."""
        learners = self.processor.learners
        try:
            point = None if model is None else handover.resume(blob, model)
        except BadState as exc:
            log.warning("ignoring the learners' sharing record: %s", exc)
            point = None
        self.epoch += 1
        self.incarnation += 1
        self.peer = Peer(f"{self.base}.{self.incarnation}")
        self.stats.sender = self.peer.worker
        handover.baseline(learners, None if point is None else point.rfm)
        start(learners)
        if point is None:
            return False
        self.peer.seen.update(point.seen)
        self.offset = point.offset
        self.moved = True
        if self.started:
            self.transport.seek(point.offset)
        self.stats.resumed_at.append(point.offset)
        return True

    async def to_end(self) -> None:
        log.warning("no sharing record with the adopted checkpoint: reading on from the "
                    "learning topic's end (deltas since that checkpoint are not merged)")  # fmt: skip
        if not self.started:
            await self.start()
        self.offset = await self.transport.seek_to_end()


def attach_sharing(app: faust.App, settings: Settings, processor: Processor) -> WorkerSharing:
    sharing = WorkerSharing(settings, processor)

    @app.timer(settings.share_every_s)  # type: ignore[untyped-decorator]
    async def share_learning() -> None:
        if app.should_stop or not sharing.recovered:
            return  # before the first recovery: the learners may yet be replaced
        await sharing.send()

    @app.task  # type: ignore[untyped-decorator]
    async def merge_learning() -> None:
        # Merged as deltas arrive (not on the timer): the delay is one fetch, not a period.
        while not app.should_stop:
            if not sharing.recovered:
                await asyncio.sleep(0.2)
                continue
            try:
                await sharing.receive(RECEIVE_WAIT_S)
            except KafkaError as exc:
                log.warning("could not read the learning topic: %s", exc)
                await asyncio.sleep(1.0)

    async def stop_sharing(sender: Any, /, *args: Any, **kwargs: Any) -> None:
        await sharing.stop()

    app.on_before_shutdown.connect(stop_sharing)

    return sharing
