"""Redis convergence: the snapshot comes back in line with the table on its own.

After a Redis outage, a worker crash, a SIGTERM or a Redis that came back empty, every
customer's hash is rewritten from the table within a bounded time: the customers a worker
owns divided by ``resync_rate`` per second, after Redis answers again (probed every
``redis_probe_s``, backing off to ``redis_probe_max_s`` while it is down). One timer does:

- **probe**: ``INFO server`` (its ``run_id``) and the marker key of every partition this
  worker has synced; a failure, a changed run id or a missing marker plans a resync
  (why these signals: :mod:`streamcrm.snapshot_sync`). Logged once when Redis goes away
  and once when it is back, by host and port only;
- **retry**: staged snapshots are written again on this timer, not only by a later batch;
- **resync**: once the table is recovered (never during a rebalance), the customers of
  each planned partition are staged from the table at a bounded rate, through the same
  writer as the batches (one writer, latest state per customer wins, so a batch and the
  resync cannot write out of order).

On SIGTERM (``app.on_before_shutdown``: the consumer has stopped) the staged snapshots
are flushed for at most ``shutdown_flush_s``; what is left is rewritten at the next start.
Every decision is a pure function of :mod:`streamcrm.snapshot_sync`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import faust
from mode import BaseSignalT

from streamcrm.app.agents import partition_of
from streamcrm.redaction import redis_address
from streamcrm.serving import SnapshotWriter
from streamcrm.snapshot import snapshot_fields, snapshot_key
from streamcrm.snapshot_sync import (
    REASONS,
    Health,
    Plan,
    marker_key,
    observe,
    plan_resync,
    probe_delay,
    resync_quota,
    retry_due,
)

if TYPE_CHECKING:
    from streamcrm.app.factory import Runtime
    from streamcrm.config import Settings

log = logging.getLogger(__name__)

TICK_S = 0.2
# The resync stages no more while this many snapshots wait for the writer (one pipeline's
# worth at the default rate): a slow Redis slows the resync instead of growing a backlog.
MAX_BACKLOG = 5000


@dataclass(slots=True)
class ResyncJob:
    partitions: frozenset[int]
    keys: list[str]
    position: int = 0
    started_at: float = 0.0
    errors: int = 0


@dataclass(slots=True)
class SyncStatus:
    resyncs: Counter[str] = field(default_factory=Counter)  # started, by reason
    resynced: int = 0  # snapshots staged from the table by resyncs
    resync_errors: int = 0  # customers whose snapshot could not be built
    last_resync_s: float | None = None  # how long the last finished resync took
    last_resync_customers: int = 0


class SnapshotSync:
    """Probe, retry and resync (see the module docstring); the shell around the writer."""

    def __init__(
        self,
        writer: SnapshotWriter,
        settings: Settings,
        store: Any,
        owned: Callable[[], set[int]],
        busy: Callable[[], bool],
    ) -> None:
        self.writer, self.settings, self.store = writer, settings, store
        self.owned, self.busy = owned, busy
        self.address = redis_address(settings.redis_url or "")
        self.health = Health()
        self.status = SyncStatus()
        self.job: ResyncJob | None = None
        self._covered: frozenset[int] = frozenset()  # synced or syncing since we got them
        self._lost: set[int] = set()
        self._back = self._restarted = False
        self._run_id: str | None = None
        self._markers_due: frozenset[int] = frozenset()  # resyncing, marker not written yet
        self._next_probe = 0.0
        self._io: asyncio.Future[None] | None = None  # a probe or marker write under way
        self._last_tick = time.monotonic()
        self._stopping = False
        # Snapshot keys of erased customers on these partitions (app/erasure.py): deleted
        # again by every resync, in case the delete of the erasure never reached Redis.
        self.erased: Callable[[frozenset[int]], list[str]] = lambda partitions: []
        writer.on_result = self._outcome

    def _outcome(self, ok: bool) -> None:
        now = time.monotonic()
        down_for = self.health.down_for(now)
        self.health, change = observe(self.health, ok, now)
        if change == "down":
            log.warning(
                "Redis at %s is unreachable (%s): %d snapshots kept, retried; the table "
                "is rewritten to Redis when it is back",
                self.address, self.writer.stats.last_error or "no answer", self.writer.pending,
            )  # fmt: skip
            self._next_probe = now + probe_delay(self.health, *self._probe_s())
        elif change == "back":
            # A full resync is planned; the run id Redis has now is the one to compare with.
            self._back, self._run_id, self._next_probe = True, None, now
            log.warning(
                "Redis at %s is back after %.1f s: resyncing from the table", self.address, down_for
            )

    def _probe_s(self) -> tuple[float, float]:
        return self.settings.redis_probe_s, self.settings.redis_probe_max_s

    def tick(self) -> None:
        """Never waits for Redis (a probe or a marker write runs in the background), so a
        Redis that hangs slows nothing but the convergence."""
        now = time.monotonic()
        elapsed, self._last_tick = now - self._last_tick, now
        if self._stopping:
            return
        idle = self._io is None or self._io.done()
        if idle and now >= self._next_probe:
            # A partition whose marker is still to be written is not "lost".
            self._io = asyncio.ensure_future(self._probe(now, self._covered - self._markers_due))
            idle = False
        w = self.writer
        if retry_due(w.pending, w.writing, self.health.up, now - w.last_flush_at,
                     self.settings.redis_retry_s):  # fmt: skip
            w.flush_soon()
        if not self.busy():
            self._plan(now)
            if self._markers_due and idle:
                self._io = asyncio.ensure_future(self._write_markers())
            if not self._markers_due:  # marked first (see _start)
                self._step(elapsed)

    async def _probe(self, now: float, marked: frozenset[int]) -> None:
        w = self.writer
        if self.health.up is False and w.pending:
            # Down with writes waiting: the retried write is the probe (a Redis that
            # answers reads but not writes, e.g. CLIENT PAUSE WRITE, is still down).
            if not w.writing:
                w.flush_soon()
            self._next_probe = now + probe_delay(self.health, *self._probe_s())
            return
        covered = sorted(marked)
        answer = await w.probe([marker_key(self.settings.redis_key_prefix, p) for p in covered])
        self._outcome(answer is not None)
        self._next_probe = time.monotonic() + probe_delay(self.health, *self._probe_s())
        if answer is None:
            return
        run_id, found = answer
        if self._run_id is not None and run_id != self._run_id:
            self._restarted = True
        self._run_id = run_id
        self._lost |= {p for p, ok in zip(covered, found, strict=True) if not ok}

    def _plan(self, now: float) -> None:
        owned = frozenset(self.owned())
        revoked = self._covered - owned
        if revoked:  # the new owner rewrites them from its table: ours may be older
            if self.job is not None:
                self.job.partitions -= revoked
            prefix = self.settings.redis_key_prefix
            parts = self.settings.partitions
            self.writer.discard(
                k for k in self.writer.staged_keys()
                if partition_of(k.removeprefix(prefix), parts) in revoked
            )  # fmt: skip
        if self.health.up is False:
            self._covered &= owned  # planned once Redis answers again
            return
        plan = plan_resync(
            owned, self._covered & owned, lost=self._lost, back=self._back,
            restarted=self._restarted,
        )  # fmt: skip
        self._covered = owned
        self._lost.clear()
        self._back = self._restarted = False
        if plan.partitions:
            self._start(plan, now)

    def _start(self, plan: Plan, now: float) -> None:
        partitions = plan.partitions
        if self.job is not None:  # still running: start over with both sets of partitions
            partitions |= self.job.partitions & frozenset(self.owned())
        self.status.resyncs.update(plan.reasons)
        self.job = ResyncJob(partitions, list(self.store.keys()), started_at=now)
        for key in self.erased(partitions):
            self.writer.stage_delete(key)
        # Marked first: keys lost while this runs take the marker with them and plan again.
        self._markers_due = partitions
        log.info(
            "resyncing partitions %s to Redis from the table (%s): %d keys to look at",
            sorted(partitions), ", ".join(plan.reasons), len(self.job.keys),
        )  # fmt: skip

    def _step(self, elapsed: float) -> None:
        job = self.job
        if job is None or self.health.up is False:
            return
        quota = resync_quota(self.settings.resync_rate, elapsed, self.writer.pending, MAX_BACKLOG)
        if quota <= 0:
            return
        prefix, parts = self.settings.redis_key_prefix, self.settings.partitions
        now = time.time()
        staged = 0
        end = min(job.position + quota, len(job.keys))
        for cid in job.keys[job.position : end]:
            if partition_of(cid, parts) not in job.partitions:
                continue
            state = self.store.get(cid)
            if state is None:
                continue
            try:
                fields = snapshot_fields(state, now)
            except Exception as exc:  # noqa: BLE001 - one bad state must not stop the resync
                self.status.resync_errors += 1
                job.errors += 1
                if job.errors == 1:  # once per resync; /stats counts them all
                    # The error, not the customer: ids stay out of logs above DEBUG.
                    log.warning("resync: no snapshot for a customer: %r", exc)
                    log.debug("resync: the customer without a snapshot: %r", cid)
                continue
            self.writer.stage(snapshot_key(cid, prefix), fields)
            staged += 1
        job.position = end
        self.status.resynced += staged
        if staged:
            self.writer.flush_soon()
        if job.position >= len(job.keys):
            took = time.monotonic() - job.started_at
            self.status.last_resync_s, self.status.last_resync_customers = took, len(job.keys)
            self.job = None
            log.info("resync of partitions %s staged in %.1f s", sorted(job.partitions), took)

    async def _write_markers(self) -> None:
        due = self._markers_due
        prefix = self.settings.redis_key_prefix
        ok = await self.writer.set_markers(
            [marker_key(prefix, p) for p in sorted(due)], repr(time.time())
        )
        self._outcome(ok)
        if ok and self._markers_due is due:  # else a new resync started meanwhile: mark it too
            self._markers_due = frozenset()

    async def drain(self) -> None:
        """SIGTERM: flush what is staged for at most ``shutdown_flush_s``."""
        self._stopping = True
        started, before = time.monotonic(), self.writer.pending
        left = await self.writer.drain(self.settings.shutdown_flush_s)
        if before:
            (log.warning if left else log.info)(
                "shutdown: %d snapshots were pending, %d still unwritten to Redis at %s after "
                "%.1f s (rewritten from the table at the next start)",
                before, left, self.address, time.monotonic() - started,
            )  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        """The figures /stats and /metrics show."""
        oldest = self.writer.oldest_unsynced()
        job = self.job
        return {
            "pending": self.writer.pending,
            "oldest_unsynced_s": None if oldest is None else round(time.monotonic() - oldest, 3),
            "redis_up": self.health.up,
            "resync_running": job is not None,
            "resync_remaining": 0 if job is None else len(job.keys) - job.position,
            "resync_partitions": [] if job is None else sorted(job.partitions),
            "resyncs": {r: self.status.resyncs[r] for r in REASONS},
            "resynced": self.status.resynced,
            "resync_errors": self.status.resync_errors,
            "last_resync_s": None
            if self.status.last_resync_s is None
            else round(self.status.last_resync_s, 3),
        }


def attach_snapshot_sync(app: faust.App, runtime: Runtime, customers: Any) -> SnapshotSync | None:
    settings = runtime.settings
    writer = runtime.snapshots
    if writer is None:
        log.warning("no Redis URL configured: running without the customer snapshot")
        return None
    inputs = set(settings.topics.inputs())

    def owned() -> set[int]:
        return {tp.partition for tp in app.consumer.assignment() if tp.topic in inputs}

    def busy() -> bool:
        return bool(app.rebalancing) or bool(app.should_stop)

    sync = SnapshotSync(writer, settings, customers.data, owned, busy)

    @app.timer(TICK_S)  # type: ignore[untyped-decorator]
    async def converge_snapshots() -> None:
        sync.tick()

    async def flush_on_shutdown(
        sender: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any
    ) -> None:
        await sync.drain()

    app.on_before_shutdown.connect(flush_on_shutdown)
    return sync
