"""The ingest agent: raw records in, customer states, dead letters and snapshots out.

It reads as the data flow; every decision is in :func:`streamcrm.ingest.process_batch`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import faust
import orjson

from streamcrm.ingest import Record, process_batch
from streamcrm.snapshot import snapshot_fields, snapshot_key
from streamcrm.state import Limits

if TYPE_CHECKING:
    from streamcrm.app.factory import Runtime


def attach_ingest(
    app: faust.App, runtime: Runtime, *, inputs: Any, deadletter: Any, customers: Any
) -> None:
    settings = runtime.settings
    kinds = settings.topics.inputs()
    limits = Limits(dedupe_window=settings.dedupe_window, recent_views=settings.recent_views)
    prefix = settings.redis_key_prefix
    store = customers.data  # the partition-aware writes below bypass the per-key hooks

    @app.agent(inputs, name="streamcrm.ingest")
    async def ingest(stream: Any) -> None:  # a faust Stream: take_events is not on StreamT
        async for events in stream.take_events(settings.batch_size, settings.batch_within_s):
            now = time.time()
            records = [
                Record(m.topic, m.partition, m.offset, m.key, m.value)
                for m in (e.message for e in events)
            ]
            result = process_batch(records, kinds, customers.get, now, limits)
            for customer_id, (partition, state) in result.states.items():
                # One changelog write per customer per batch, to the customer's own
                # partition (the batch mixes partitions, so the "current event" is wrong).
                store[customer_id] = state
                customers.send_changelog(partition, customer_id, state)
                if runtime.snapshots is not None:
                    runtime.snapshots.stage(
                        snapshot_key(customer_id, prefix), snapshot_fields(state, now)
                    )
            for key, letter in result.dead_letters:
                await deadletter.send(key=key, value=orjson.dumps(letter))
            runtime.stats.add(result)
            if runtime.snapshots is not None:
                await runtime.snapshots.flush()
