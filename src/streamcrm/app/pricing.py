"""Price suggestions in the worker: demand re-keyed by SKU, one owner per SKU. Shell only.

Every worker collects what its applied events add per SKU (:class:`DemandDeltas`, the
processor's ``on_applied``) and, after each batch's commit, publishes one record per SKU
to ``Topics.sku_demand`` keyed by SKU (before the batch's offsets may be committed). The
worker that owns a partition of that topic (Faust's consumer group: the same partition
numbers as its input partitions) adds each record's rows into the SKU's demand
(:class:`SkuOwner`, at most ``pricing.max_skus`` SKUs, least recent out; a (sender, seq)
merged already is skipped), writes the SKU's new state with the sequences it counts to
the changelog-backed table ``pricing-v1`` (a JSON object; an evicted SKU is deleted),
and sends any ``price_suggestion`` to ``Topics.pricing`` keyed by SKU. A record that is
not a delta is dead-lettered with its reason. After a restart or a rebalance the table
is rebuilt from the restored changelog, for the partitions owned. The decisions are the pure :mod:`streamcrm.pricing`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import faust
import orjson

from streamcrm.app.catchup import changelog_tail
from streamcrm.events import InvalidEvent
from streamcrm.ingest.batch import Record
from streamcrm.ingest.dead_letter import dead_letter
from streamcrm.pricing.deltas import BadDelta, DemandDeltas, decode
from streamcrm.pricing.owner import SkuOwner
from streamcrm.pricing.table import SkuTable
from streamcrm.sharing.exchange import partition_for

if TYPE_CHECKING:
    from streamcrm.app.factory import Runtime
    from streamcrm.ingest import Processor

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PricingStats:
    """What /stats shows under ``pricing``."""

    deltas_sent: int = 0
    delta_bytes_sent: int = 0
    events_counted: int = 0  # applied events that named a SKU (views, cart adds, orders)
    deltas_merged: int = 0
    deltas_duplicate: int = 0  # redelivered: its (sender, seq) was merged already
    deltas_rejected: int = 0
    suggestions: int = 0
    by_direction: dict[str, int] = field(default_factory=dict)

    def as_dict(self, table: SkuTable, held: int) -> dict[str, Any]:
        return {
            "deltas_sent": self.deltas_sent, "delta_bytes_sent": self.delta_bytes_sent,
            "events_counted": self.events_counted, "deltas_merged": self.deltas_merged,
            "deltas_duplicate": self.deltas_duplicate, "deltas_rejected": self.deltas_rejected,
            "price_suggestions": self.suggestions,
            "rows_held": held,
            "by_direction": dict(self.by_direction), "skus_tracked": len(table),
            "skus_evicted": table.evicted, "max_skus": table.capacity,
        }  # fmt: skip


class WorkerPricing:
    def __init__(self, runtime: Runtime, store: Any, changelog: str) -> None:
        settings = runtime.settings
        self.runtime, self.store, self.changelog = runtime, store, changelog
        self.cfg = settings.crm.pricing
        self.topics = settings.topics
        self.partitions = settings.partitions
        # A sender per incarnation: a restarted worker numbers its records from 1 again.
        sender = f"{settings.app_id}.{uuid.uuid4().hex[:12]}"
        self.deltas = DemandDeltas(self.cfg.demand.bucket_s, sender)
        self.owner = SkuOwner(self.cfg.max_skus)
        self.stats = PricingStats()
        self._sending = asyncio.Lock()

    def as_dict(self) -> dict[str, Any]:
        return self.stats.as_dict(self.owner.table, self.deltas.rows)

    def until(self, processor: Processor, owned: set[int], now: float) -> float:
        """Up to when every owned input partition has been applied: the wall clock's
        ``now``; on the event clock the least partition watermark (-inf while one has
        none yet: its share of every bucket is still to come)."""
        if processor.clock == "wall":
            return now
        marks = processor.watermarks
        return min((marks.get(p, float("-inf")) for p in owned), default=float("-inf"))

    async def publish(self, processor: Processor, owned: set[int], now: float) -> None:
        """Send what committed batches added per SKU, the buckets every owned partition
        has passed (inside the batch's lock: no batch is decided meanwhile)."""
        if not len(self.deltas):
            return
        async with self._sending:  # one take at a time: each SKU's records stay in order
            self.stats.events_counted += self.deltas.events
            self.deltas.events = 0
            outbox, topic = self.runtime.outbox, self.topics.sku_demand
            for key, value in self.deltas.take(self.until(processor, owned, now)):
                await outbox.send(topic, key, value)
                self.stats.deltas_sent += 1
                self.stats.delta_bytes_sent += len(key) + len(value)

    async def merge(self, record: Record, now: float) -> None:
        """One record of the demand topic, on the partition's owner; never raises on data."""
        try:
            delta = decode(record.value)
        except BadDelta as exc:
            await self._reject(record, exc.reason, exc.detail, now)
            return
        sku, emitted = delta.sku, self.owner.merge(delta, self.cfg)
        if emitted is None:
            self.stats.deltas_duplicate += 1
            return
        self.stats.deltas_merged += 1
        outbox = self.runtime.outbox
        value = self.owner.stored(sku)
        if value is not None:
            self.store[sku] = value
            await outbox.send(self.changelog, sku.encode(), value, record.partition)
        for gone in self.owner.take_gone():
            self.store.pop(gone, None)
            await outbox.send(self.changelog, gone.encode(), None, self._partition(gone))
        for suggestion in emitted:
            self.stats.suggestions += 1
            direction = suggestion["direction"]
            self.stats.by_direction[direction] = self.stats.by_direction.get(direction, 0) + 1
            await outbox.send(self.topics.pricing, sku.encode(), orjson.dumps(suggestion))

    async def _reject(self, record: Record, reason: str, detail: str, now: float) -> None:
        self.stats.deltas_rejected += 1
        log.warning("%s offset %d: demand delta rejected: %s", record.topic, record.offset, detail)
        body = dead_letter(record, InvalidEvent(reason, detail, None), now)
        await self.runtime.outbox.send(self.topics.deadletter, record.key, orjson.dumps(body))

    def _partition(self, sku: str) -> int:
        return partition_for(sku.encode(), self.partitions)

    def rebuild(self, items: list[tuple[str, bytes]], owned: set[int]) -> None:
        """The SKU table again from the restored changelog: owned partitions only."""
        self.owner = SkuOwner(self.cfg.max_skus)
        for sku, value in items:
            if self._partition(sku) not in owned:
                continue
            try:
                self.owner.restore(value)
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                log.warning("pricing table: ignoring the unreadable state of one SKU: %s", exc)
        for gone in self.owner.take_gone():  # more restored than the cap: the rest is gone
            self.store.pop(gone, None)


def attach_pricing(app: faust.App, runtime: Runtime, processor: Processor, table: Any) -> WorkerPricing:
    """Wire price suggestions: the delta hook, the owner's agent and its recovery."""
    settings = runtime.settings
    changelog = table.changelog_topic.get_topic_name()
    pricing = WorkerPricing(runtime, table.data, changelog)
    processor.on_applied = pricing.deltas.observe
    demand = app.topic(
        settings.topics.sku_demand, key_serializer="raw", value_serializer="raw",
        partitions=settings.partitions, internal=True,
    )  # fmt: skip

    @app.agent(demand)
    async def suggest_prices(stream: Any) -> None:
        async for event in stream.events():
            m = event.message
            record = Record(m.topic, m.partition, m.offset, m.key, m.value)
            try:
                await pricing.merge(record, time.time())
            except Exception:  # one record must never stop the agent
                log.exception("demand delta at %s[%d]@%d failed", m.topic, m.partition, m.offset)
                pricing.stats.deltas_rejected += 1

    inputs = set(settings.topics.inputs())

    @app.timer(1.0)  # type: ignore[untyped-decorator]
    async def send_held_demand() -> None:
        # Wall clock: a bucket held back for being incomplete goes once it is, even if no
        # batch comes after it (the event clock moves with batches only).
        if settings.clock == "wall" and len(pricing.deltas) and not app.should_stop:
            owned = {tp.partition for tp in app.consumer.assignment() if tp.topic in inputs}
            await pricing.publish(processor, owned, time.time())

    @table.on_recover  # type: ignore[untyped-decorator]
    async def rebuild_pricing() -> None:
        owned = {tp.partition for tp in app.consumer.assignment() if tp.topic == demand.get_topic_name()}
        tail = await changelog_tail(settings.broker, changelog, owned, security=settings.kafka_security)
        for _, key, value in tail:
            if value is None:
                table.data.pop(key.decode(), None)
            else:
                table.data[key.decode()] = value
        pricing.rebuild(list(table.data.items()), owned)

    return pricing
