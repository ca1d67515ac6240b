"""The shell's batch commit: one decided batch handed to the table, Kafka and Redis.

Order is what recovery relies on: erasures first (a later event of the same id in the
batch is a new customer, written after the tombstone), then each changed state (one
changelog record per customer per batch, to the customer's own partition: a batch mixes
partitions, so Faust's "current event" would name the wrong one), then every emitted
event to its topic (:data:`streamcrm.protocol.TOPIC_OF`), then the durable decision audit
(``--audit``), the decision log and the counters. Redis is written in the background and
never holds the stream.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson

from streamcrm import state_codec
from streamcrm.app.audit import publish_audit
from streamcrm.app.erasure import commit_erasures
from streamcrm.audit import is_stage
from streamcrm.events import PROCESSING_ERROR
from streamcrm.ingest import BatchResult
from streamcrm.policies.abandoned_cart import anonymous
from streamcrm.protocol import TOPIC_OF
from streamcrm.snapshot import snapshot_fields, snapshot_key

if TYPE_CHECKING:
    from streamcrm.app.factory import Runtime
    from streamcrm.config import Settings

decision_log = logging.getLogger("streamcrm.decisions")
log = logging.getLogger(__name__)


class BatchCommit:
    """``await commit(result, now)``: write one batch's effects, in recovery order.

    ``store``: the customer table's local store (written directly: the changelog record
    is sent explicitly); ``changelog``: its changelog topic; ``markers``: the erasure
    markers table (touched only when the batch erased someone).
    """

    def __init__(self, runtime: Runtime, *, store: Any, changelog: str, markers: Any) -> None:
        self.runtime = runtime
        self.store = store
        self.changelog = changelog
        self.markers = markers
        self.topics = {t: getattr(runtime.settings.topics, a) for t, a in TOPIC_OF.items()}

    async def __call__(self, result: BatchResult, now: float) -> None:
        runtime = self.runtime
        await commit_erasures(
            result, runtime, store=self.store, changelog=self.changelog, markers=self.markers
        )
        await self._states(result, now)
        for event_type, records in result.emitted.items():
            topic = self.topics[event_type]
            for key, body in records:
                await runtime.outbox.send(topic, key, orjson.dumps(body))
        await publish_audit(runtime, result.decisions)
        log_batch(result)
        if runtime.settings.clock == "wall":  # stages fire in sweeps and at batch ends alike
            for decision in filter(is_stage, result.decisions):
                runtime.stats.fired_late(now - decision["at"])
        runtime.stats.add(result)
        if runtime.snapshots is not None:
            runtime.snapshots.flush_soon()  # in the background: Redis never holds the stream

    async def _states(self, result: BatchResult, now: float) -> None:
        runtime, store = self.runtime, self.store
        prefix = runtime.settings.redis_key_prefix
        for customer_id, (partition, state) in result.states.items():
            store[customer_id] = state  # one changelog record per customer per batch
            key = customer_id.encode()
            await runtime.outbox.send(self.changelog, key, state_codec.encode(state), partition)
            if runtime.snapshots is not None:
                runtime.snapshots.stage(
                    snapshot_key(customer_id, prefix), snapshot_fields(state, now)
                )


def decisions_read(settings: Settings) -> bool:
    """Does anything read the batch's decision records: the audit topic (``--audit``) or
    the decision log (``--log-level info`` or finer)? Offer decisions build theirs only
    then (``CrmConfig.audit_offers``)."""
    level = logging.getLevelName(settings.log_level.upper())
    logged = isinstance(level, int) and level <= logging.INFO
    return settings.audit or logged or decision_log.isEnabledFor(logging.INFO)


def log_batch(result: BatchResult) -> None:
    """The decision audit log; bugs (not bad input) loudly, without customer ids.

    At INFO a decision is logged without its customer id (personal data stays out of logs
    by default); DEBUG adds it, for tracing one customer by hand."""
    if decision_log.isEnabledFor(logging.DEBUG):
        for decision in result.decisions:
            decision_log.debug("%s", orjson.dumps(decision).decode())
    elif decision_log.isEnabledFor(logging.INFO):
        for decision in result.decisions:
            decision_log.info("%s", orjson.dumps(anonymous(decision)).decode())
    for _, error in result.timer_errors:
        log.error("a deadline raised and was dropped until the customer's next event: %s", error)
    if result.dead_by_reason.get(PROCESSING_ERROR):
        n = result.dead_by_reason[PROCESSING_ERROR]
        log.error("%d events raised while applied; dead-lettered as processing_error", n)
