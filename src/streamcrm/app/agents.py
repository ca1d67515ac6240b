"""The ingest loop and timers: raw records in; customer states, coupons, dead letters and
snapshots out.

They read as the data flow; every decision is in :class:`streamcrm.ingest.Processor`.
Input arrives through :mod:`streamcrm.app.intake` (Faust's consumer, without its
per-message hand-off). Each batch's (and each sweep's) writes go through
:class:`streamcrm.app.commit.BatchCommit`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import faust
from aiokafka.partitioner import murmur2

from streamcrm import state_codec
from streamcrm.app import learner_store
from streamcrm.app.campaigns import attach_campaigns
from streamcrm.app.catchup import changelog_tail
from streamcrm.app.commit import BatchCommit, decisions_read
from streamcrm.app.deciding import Deciding
from streamcrm.app.erasure import attach_marker_expiry, marker_lookup
from streamcrm.app.horizon import ReadHorizon
from streamcrm.app.intake import Intake
from streamcrm.app.sharing import WorkerSharing, attach_sharing
from streamcrm.ingest import Processor, Record
from streamcrm.publish import end_of_stream
from streamcrm.state import Limits

if TYPE_CHECKING:
    from streamcrm.app.factory import Runtime
    from streamcrm.config import Settings


def partition_of(customer_id: str, partitions: int) -> int:
    """The partition Kafka's default (murmur2) partitioner gives this key."""
    hashed: int = murmur2(customer_id.encode())
    return (hashed & 0x7FFFFFFF) % partitions


log = logging.getLogger(__name__)

# At most this many deadlines fire per sweep and per batch (wall clock); the rest fire on
# the next, and input batches waiting for the decision lock go in between. A flash sale's
# 100,000 notices due at once otherwise fired in one 52 s sweep or batch with input waiting
# behind it (README "Flash sales"). About 0.3 s of firing at ~0.3 ms each.
FIRE_SLICE = 1000


def _owned(app: faust.App, input_topics: set[str]) -> set[int]:
    return {tp.partition for tp in app.consumer.assignment() if tp.topic in input_topics}


def _adopt_learners(
    processor: Processor, table: Any, partitions: set[int], sharing: WorkerSharing | None
) -> tuple[set[int], bool]:
    """Continue from the most advanced checkpoint among the partitions now owned; the
    partitions whose copy now matches the learners (checkpoints send them only changes),
    and whether the exchange must read on from the learning topic's end (no sharing
    record came with the checkpoint)."""
    if sharing is not None:
        sharing.export()  # what this incarnation learned: published, then merged back
    processor.learners, adopted = learner_store.adopt(processor.learners, table, partitions)
    processor.learners.candidates.take_changes()  # what follows is relative to this point
    if adopted is None:
        return set(), False
    to_end = False
    if sharing is not None:
        model = table.get(learner_store.model_key(adopted))
        to_end = not sharing.adopted(model, table.get(learner_store.sharing_key(adopted)))
    return {adopted}, to_end


def processor_for(settings: Settings) -> Processor:
    """The worker's decision core, configured from its settings."""
    return Processor(
        settings.topics.inputs(),
        limits=Limits(dedupe_window=settings.dedupe_window, recent_views=settings.recent_views),
        # Its offers topic is an output: the exposure goes with each offer (offers.exposure).
        crm=replace(settings.crm, audit_offers=decisions_read(settings), offer_exposure=True),
        clock=settings.clock,
        reorder=True,
        max_record_bytes=settings.max_record_bytes,
        max_future_skew_s=settings.max_future_skew_s,
        erasure_hold_s=settings.erasure_hold_s,
    )


def attach_agents(
    app: faust.App, runtime: Runtime, *, inputs: Any, customers: Any, learners: Any, markers: Any
) -> Processor:
    settings = runtime.settings
    processor = processor_for(settings)
    input_topics = set(settings.topics.inputs())
    store = customers.data  # read and written directly; the changelog is sent explicitly
    changelog = customers.changelog_topic.get_topic_name()

    # Held across decide + commit by the ingest loop and the sweep alike: commit awaits
    # the producer between store writes, and a sweep run in such a gap read states not
    # yet written, fired on them, and was then overwritten (issue 12, point 6).
    deciding = asyncio.Lock()

    erased = marker_lookup(markers)

    commit = BatchCommit(runtime, store=store, changelog=changelog, markers=markers)
    if settings.share_learning:
        runtime.sharing = attach_sharing(app, settings, processor)

    intake = Intake(
        input_topics, limit=4 * settings.batch_size, crash_marker=settings.drills.crash_marker
    )
    intake.install(app)
    app.topics.add(inputs)  # subscribed and assigned by Faust; delivered through the intake

    async def ingest_batch(messages: list[Any]) -> None:
        records = [
            Record(m.topic, m.partition, m.offset, m.key, m.value, end_of_stream(m.headers))
            for m in messages
        ]
        async with deciding:
            now = time.time()
            # The assignment cannot change inside process() (it never awaits).
            owned = _owned(app, input_topics).__contains__
            horizon = intake.reads.taking(messages, now)  # no deadline on a partial view
            result = processor.process(
                records, store.get, now, owned, horizon=horizon, erased=erased, limit=FIRE_SLICE
            )
            await commit(result, now)
            if runtime.pricing is not None:  # the batch's per-SKU demand, re-keyed by SKU
                await runtime.pricing.publish(processor, _owned(app, input_topics), now)
        intake.done(messages)  # sent: the offsets may be committed
        runtime.stats.processed(
            [(m.topic, m.partition, m.offset, m.timestamp) for m in messages], time.time()
        )

    @app.task  # type: ignore[untyped-decorator]
    async def ingest() -> None:
        # Whatever has arrived is one batch: under load batches grow by themselves, when
        # quiet an event is decided as soon as its fetch lands (no batching window).
        try:
            while not app.should_stop:
                await ingest_batch(await intake.take(settings.batch_size))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - logged by _stop_on_bug
            # A bug, not bad input (that is dead-lettered): stop rather than skip events;
            # the restarted worker resumes from the last committed offsets.
            await _stop_on_bug(app, exc)

    outside = Deciding(  # what decides between batches, under the same lock
        app, settings, processor, store.get, commit, deciding, lambda: _owned(app, input_topics)
    )
    _attach_sweep(outside, intake.reads)
    attach_campaigns(outside)  # the broadcast flash-sale campaigns (not an input: every worker's)
    attach_recovery(app, settings, processor, customers, learners, markers, runtime.sharing)
    attach_marker_expiry(app, runtime, markers, lambda cid: partition_of(cid, settings.partitions))
    return processor


async def _stop_on_bug(app: faust.App, exc: Exception) -> None:
    """Commit what was applied (acked batches only, not the one that failed), then crash.

    Without the commit a restart re-read every batch since the last periodic commit
    (2.8 s): their writes were sent, so each customer's dedupe window (its last
    ``dedupe_window`` event ids) dropped them, except those older than the window, which
    were applied twice (measured: crash drills, 14 of 80 customers).
    """
    log.exception("the ingest loop failed")
    try:
        await app.consumer.commit()
    except Exception:
        log.exception("could not commit the applied offsets before stopping")
    await app.crash(exc)


def _attach_sweep(deciding: Deciding, reads: ReadHorizon) -> None:
    """The wall-clock timer sweep: fires what is due between batches, up to each
    partition's read horizon (app/horizon.py)."""
    settings, processor, lookup = deciding.settings, deciding.processor, deciding.lookup

    @deciding.app.timer(settings.sweep_interval_s)  # type: ignore[untyped-decorator]
    async def sweep_deadlines() -> None:
        # Only the wall clock moves without events; on the event clock deadlines fire
        # inside processing as the watermark passes them.
        if settings.clock != "wall":
            return
        while processor.next_due() is not None:
            result = await deciding.decide(
                lambda now, owned: processor.sweep(
                    lookup, now, owned, horizon=reads.at(now), limit=FIRE_SLICE
                ),
                commit_empty=False,
            )
            if result is None or len(result.states) + len(result.timer_errors) < FIRE_SLICE:
                return  # all fired that was due (or partitions are moving)
            await asyncio.sleep(0)  # a batch waiting for the lock goes first (it is fair)


def attach_recovery(
    app: faust.App,
    settings: Settings,
    processor: Processor,
    customers: Any,
    learners: Any,
    markers: Any,
    sharing: WorkerSharing | None = None,
) -> None:
    """Checkpoint the learners; after a restart or rebalance, bring every table and index back."""
    input_topics = set(settings.topics.inputs())

    last_checkpoint = [time.monotonic()]
    synced: set[int] = set()  # owned partitions whose copy holds every change so far
    recoveries = [0]  # a recovery during a checkpoint's writes makes its "synced" stale

    @app.timer(1.0)  # type: ignore[untyped-decorator]
    async def checkpoint_learners() -> None:
        if time.monotonic() - last_checkpoint[0] < settings.checkpoint_every_s or app.rebalancing:
            return
        last_checkpoint[0] = time.monotonic()
        owned, recovery = _owned(app, input_topics), recoveries[0]
        if sharing is not None:
            sharing.export()  # no await until the snapshot: it holds exactly what seen lists
        plan = learner_store.writes(processor.learners, owned, synced & owned, learners.data)
        if sharing is not None:
            plan = sharing.checkpoint_records(plan)
        for n, (partition, key, value) in enumerate(plan):  # a snapshot, taken before any await
            if value is None:
                learners.data.pop(key, None)
            else:
                learners.data[key] = value
            learners.send_changelog(partition, key, value)
            if n % 1000 == 999:
                await asyncio.sleep(0)  # a first full copy can be 10^5 records: stay responsive
        if recovery == recoveries[0]:
            synced.clear()
            synced.update(owned)
        if sharing is not None:
            await sharing.publish()

    @customers.on_recover  # type: ignore[untyped-decorator]
    async def rebuild_deadlines() -> None:
        active, generation = _owned(app, input_topics), app.consumer_generation_id
        tables: tuple[tuple[Any, Callable[[bytes], Any]], ...] = (
            (customers, state_codec.decode),  # the changelog's compact form
            (learners, bytes),
            (markers, bytes),
        )
        tails = [
            await changelog_tail(
                settings.broker,
                table.changelog_topic.get_topic_name(),
                active,
                security=settings.kafka_security,
            )
            for table, _ in tables
        ]
        if app.consumer_generation_id != generation:
            # Another rebalance began while the tails were read. Faust cancels the
            # recovery that called this but not this task (its callbacks run as tasks
            # of their own): the next generation restores, catches up and applies
            # batches meanwhile, and these older tails written now would set its
            # customers back and lose the events applied in between (tests/unit/
            # test_recovery_catchup.py). That generation's own catch-up does the rest.
            log.warning(
                "changelog catch-up of generation %s discarded: generation %s began meanwhile",
                generation,
                app.consumer_generation_id,
            )
            return
        for (table, decode), tail in zip(tables, tails, strict=True):  # no await from here
            for _, key, value in tail:  # in offset order per partition: the last write wins
                if value is None:
                    table.data.pop(key.decode(), None)
                else:
                    table.data[key.decode()] = decode(value)
        recoveries[0] += 1
        synced.clear()
        adopted, to_end = _adopt_learners(processor, learners.data, active, sharing)
        synced.update(adopted)
        # After a restart or a rebalance: every pending deadline comes back from the
        # restored table (the index is derived state, never persisted on its own).
        processor.rebuild(
            (cid, partition_of(cid, settings.partitions), state) for cid, state in customers.items()
        )
        if sharing is not None:
            if to_end:
                await sharing.to_end()
            sharing.recovered = True
            await sharing.publish()
