"""Read back what a verify run left: every record of a topic, and the Redis snapshots.

Topics are read from their start up to the high watermark each fetch reports (this
Tansu build answers ListOffsets "latest" with 1 whatever the log holds, so end offsets
are not asked for).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import redis
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from streamcrm.kafka_security import KafkaSecurity, client_kwargs, start_client
from streamcrm.snapshot import snapshot_key


async def read_topic(
    bootstrap: str, topic: str, security: KafkaSecurity | None = None, timeout_s: float = 120.0
) -> list[ConsumerRecord]:
    """Every record of ``topic``, per partition in offset order; [] if it does not exist."""
    security = security or KafkaSecurity()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
        auto_offset_reset="earliest", max_partition_fetch_bytes=4 * 1024 * 1024,
        **client_kwargs(security),
    )  # fmt: skip
    await start_client(consumer, bootstrap, security)
    try:
        if topic not in await consumer.topics():
            return []
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout_s
        while not await _at_end(consumer, tps):
            if time.monotonic() > deadline:
                msg = f"reading {topic} did not reach its end within {timeout_s:.0f} s"
                raise TimeoutError(msg)
            batch = await consumer.getmany(timeout_ms=500)
            for tp in tps:
                records.extend(batch.get(tp, ()))
        return records
    finally:
        await consumer.stop()


async def _at_end(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> bool:
    for tp in tps:
        highwater = consumer.highwater(tp)
        if highwater is None or await consumer.position(tp) < highwater:
            return False
    return True


def read_topics(
    bootstrap: str, topics: Iterable[str], security: KafkaSecurity
) -> dict[str, list[ConsumerRecord]]:
    async def all_of() -> dict[str, list[ConsumerRecord]]:
        return {t: await read_topic(bootstrap, t, security) for t in topics}

    return asyncio.run(all_of())


def read_snapshots(url: str, customers: Iterable[str], prefix: str) -> dict[str, dict[str, str]]:
    client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=10)
    try:
        ids = list(customers)
        pipe = client.pipeline(transaction=False)
        for customer_id in ids:
            pipe.hgetall(snapshot_key(customer_id, prefix))
        found: list[Any] = pipe.execute()
        return dict(zip(ids, found, strict=True))
    finally:
        client.close()
