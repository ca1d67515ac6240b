"""The agents: raw records in; customer states, coupons, dead letters and snapshots out.

They read as the data flow; every decision is in :class:`streamcrm.ingest.Processor`.
Writes go to the table's store plus an explicit changelog send to the customer's own
partition: a batch (and a timer sweep) mixes partitions, so Faust's "current event"
would name the wrong one.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import faust
import orjson
from aiokafka.partitioner import murmur2

from streamcrm.app.catchup import changelog_tail
from streamcrm.ingest import BatchResult, Processor, Record
from streamcrm.publish import END_OF_STREAM_HEADER
from streamcrm.snapshot import snapshot_fields, snapshot_key
from streamcrm.state import CustomerState, Limits

if TYPE_CHECKING:
    from streamcrm.app.factory import Runtime

decision_log = logging.getLogger("streamcrm.decisions")


def partition_of(customer_id: str, partitions: int) -> int:
    """The partition Kafka's default (murmur2) partitioner gives this key."""
    hashed: int = murmur2(customer_id.encode())
    return (hashed & 0x7FFFFFFF) % partitions


def end_of_stream(headers: Any) -> float | None:
    """The final event time an end-of-stream control record carries in its header, if any."""
    if not headers:
        return None
    pairs = headers.items() if hasattr(headers, "items") else headers
    for name, value in pairs:
        if name == END_OF_STREAM_HEADER:
            return float(value.decode() if isinstance(value, bytes) else value)
    return None


def attach_agents(
    app: faust.App,
    runtime: Runtime,
    *,
    inputs: Any,
    deadletter: Any,
    coupons: Any,
    profiles: Any,
    offers: Any,
    customers: Any,
) -> Processor:
    settings = runtime.settings
    processor = Processor(
        settings.topics.inputs(),
        limits=Limits(dedupe_window=settings.dedupe_window, recent_views=settings.recent_views),
        crm=settings.crm,
        clock=settings.clock,
        reorder=True,
    )
    input_topics = set(settings.topics.inputs())
    prefix = settings.redis_key_prefix
    store = customers.data

    def owned(partition: int) -> bool:
        assigned = app.consumer.assignment()
        return any(tp.partition == partition and tp.topic in input_topics for tp in assigned)

    async def commit(result: BatchResult, now: float) -> None:
        for customer_id, (partition, state) in result.states.items():
            store[customer_id] = state  # one changelog write per customer per batch
            customers.send_changelog(partition, customer_id, state)
            if runtime.snapshots is not None:
                runtime.snapshots.stage(
                    snapshot_key(customer_id, prefix), snapshot_fields(state, now)
                )
        for key, letter in result.dead_letters:
            await deadletter.send(key=key, value=orjson.dumps(letter))
        for key, coupon in result.coupons:
            await coupons.send(key=key, value=orjson.dumps(coupon))
        for key, update in result.profile_events:
            await profiles.send(key=key, value=orjson.dumps(update))
        for key, offer in result.offers:
            await offers.send(key=key, value=orjson.dumps(offer))
        if decision_log.isEnabledFor(logging.INFO):
            for decision in result.decisions:
                decision_log.info("%s", orjson.dumps(decision).decode())
        runtime.stats.add(result)
        if runtime.snapshots is not None:
            await runtime.snapshots.flush()

    @app.agent(inputs, name="streamcrm.ingest")
    async def ingest(stream: Any) -> None:  # a faust Stream: take_events is not on StreamT
        async for events in stream.take_events(settings.batch_size, settings.batch_within_s):
            now = time.time()
            records = [
                Record(m.topic, m.partition, m.offset, m.key, m.value, end_of_stream(m.headers))
                for m in (e.message for e in events)
            ]
            await commit(processor.process(records, customers.get, now, owned), now)
            runtime.stats.processed(
                [
                    (r.topic, r.partition, r.offset, e.message.timestamp)
                    for r, e in zip(records, events, strict=True)
                ],
                time.time(),
            )

    @app.timer(settings.sweep_interval_s)  # type: ignore[untyped-decorator]
    async def sweep_deadlines() -> None:
        # Only the wall clock moves without events; on the event clock deadlines fire
        # inside processing as the watermark passes them.
        if settings.clock != "wall" or processor.next_due() is None:
            return
        if app.rebalancing or app.should_stop:
            # Partitions may be changing hands: the next owner fires what is due, from
            # its restored table. Firing here could fire twice.
            return
        now = time.time()
        result = processor.sweep(customers.get, now, owned)
        for decision in result.decisions:
            runtime.stats.fired_late(now - decision["at"])
        if result.states:
            await commit(result, now)
            # Deliver the fired state and its coupons now, so a handover right after this
            # sweep restores "already fired" rather than firing again.
            await app.producer.flush()

    @customers.on_recover  # type: ignore[untyped-decorator]
    async def rebuild_deadlines() -> None:
        active = {tp.partition for tp in app.consumer.assignment() if tp.topic in input_topics}
        tail = await changelog_tail(
            settings.broker, customers.changelog_topic.get_topic_name(), active
        )
        for _, key, value in tail:  # in offset order per partition: the last write wins
            customer_id = key.decode()
            if value is None:
                store.pop(customer_id, None)
            else:
                store[customer_id] = CustomerState.from_dict(orjson.loads(value))
        # After a restart or a rebalance: every pending deadline comes back from the
        # restored table (the index is derived state, never persisted on its own).
        processor.rebuild(
            (cid, partition_of(cid, settings.partitions), state) for cid, state in customers.items()
        )

    return processor
