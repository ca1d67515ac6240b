"""Publish synthetic storefront traffic to the input topics (the shell of ``generate``)."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from streamcrm.config import Settings, bootstrap_servers
from streamcrm.kafka_admin import client_errors_muted
from streamcrm.synthetic import generate

UNBOUNDED = 10**12  # "--events 0": a stream that outlives any run


async def publish_synthetic(
    settings: Settings, events: int, *, seed: int, customers: int, bad: int, rate: float
) -> int:
    """Send ``events`` records (0 = until stopped), paced at ``rate``/s (0 = flat out)."""
    topic_of = {kind: name for name, kind in settings.topics.inputs().items()}
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers(settings.broker),
        linger_ms=5,
        acks=1,
        max_batch_size=256 * 1024,
    )
    try:
        with client_errors_muted():
            await asyncio.wait_for(producer.start(), 15)
    except (TimeoutError, KafkaError, OSError):
        await producer.stop()
        msg = (
            f"cannot reach the Kafka broker at {bootstrap_servers(settings.broker)}; "
            "start it or pass --broker / KAFKA_BOOTSTRAP_SERVERS"
        )
        raise RuntimeError(msg) from None
    sent = 0
    started = time.monotonic()
    pending: list[asyncio.Future[object]] = []
    try:
        for record in generate(events or UNBOUNDED, seed=seed, customers=customers, bad=bad):
            pending.append(
                await producer.send(topic_of[record.topic_kind], record.value, key=record.key)
            )
            sent += 1
            if len(pending) >= 2000:
                await asyncio.gather(*pending)
                pending.clear()
            if rate > 0:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent
