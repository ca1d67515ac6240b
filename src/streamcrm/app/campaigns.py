"""The broadcast campaigns topic: every worker reads every partition of it. Shell only.

``storefront.campaigns`` (keyed by campaign id) is read by an assigned aiokafka consumer
outside the consumer group (as the learning topic is, sharing/kafka.py), from the start
at every worker start: campaigns are few and every worker needs all of them, whichever
customer partitions it owns. Not a Faust GlobalTable: that needs a changelog topic of
its own fed by one group member, its standby recovery gives no per-update hook to fan
out from, and it would join the group's assignment. Not an input either: it is not
co-partitioned with the customer topics and does not hold the read horizon back.

Each record goes to :meth:`streamcrm.ingest.Processor.announce` under the decision lock
and its writes through the batch commit, like a batch of input. Reading waits for the
first recovery (the interest index is rebuilt with the table); after each later
recovery (a rebalance) the running campaigns are fanned out again on the partitions
now owned, idempotently, so an announcement read while partitions moved is not lost.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from streamcrm.config import bootstrap_servers
from streamcrm.ingest import Record
from streamcrm.kafka_security import client_kwargs

if TYPE_CHECKING:
    from streamcrm.app.deciding import Deciding

log = logging.getLogger(__name__)


def attach_campaigns(deciding: Deciding) -> None:
    app, settings = deciding.app, deciding.settings
    processor, lookup = deciding.processor, deciding.lookup
    topic = settings.topics.campaigns

    @app.task  # type: ignore[untyped-decorator]
    async def read_campaigns() -> None:
        while processor.flash.rebuilds == 0 and not app.should_stop:
            await asyncio.sleep(0.1)  # the interest index comes with the first recovery
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers(settings.broker), group_id=None,
            enable_auto_commit=False, auto_offset_reset="earliest",
            fetch_max_wait_ms=settings.fetch_max_wait_ms, **client_kwargs(settings.kafka_security),
        )  # fmt: skip
        await consumer.start()
        try:
            parts = await _partitions(consumer, topic)
            consumer.assign([TopicPartition(topic, p) for p in parts])
            await consumer.seek_to_beginning()
            seen = processor.flash.rebuilds
            while not app.should_stop:
                if processor.flash.rebuilds != seen and settings.clock == "wall":
                    seen = processor.flash.rebuilds
                    await deciding.decide(lambda now, mine: processor.fan_out(
                        lookup, processor.flash.running(now), now, mine))  # fmt: skip
                try:
                    batches = await consumer.getmany(timeout_ms=500)
                except KafkaError as exc:
                    log.warning("could not read %s: %s", topic, exc)
                    await asyncio.sleep(1.0)
                    continue
                for tp, messages in batches.items():
                    for m in messages:
                        record = Record(tp.topic, tp.partition, m.offset, m.key, m.value)
                        await deciding.decide(partial(processor.announce, record, lookup))
        finally:
            await consumer.stop()


async def _partitions(consumer: Any, topic: str) -> list[int]:
    for _ in range(100):  # the topic may be being created by another worker
        parts = consumer.partitions_for_topic(topic)
        if parts:
            return sorted(parts)
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.1)
    msg = f"topic {topic} has no partitions"
    raise RuntimeError(msg)
