"""Publish events to the input topics (the shell of ``generate``, the demo and replays)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from streamcrm.config import Settings, bootstrap_servers
from streamcrm.events import parse_ts
from streamcrm.kafka_security import client_kwargs, start_client
from streamcrm.synthetic import N_SKUS, generate
from streamcrm.synthetic_demand import with_demand_shifts

UNBOUNDED = 10**12  # "--events 0": a stream that outlives any run
END_OF_STREAM_HEADER = "streamcrm-end-of-stream"


def end_of_stream(headers: Any) -> float | None:
    """The final event time an end-of-stream control record carries in its header, if any.

    >>> end_of_stream([(END_OF_STREAM_HEADER, b"1796000000.5")]), end_of_stream(None)
    (1796000000.5, None)
    """
    if not headers:
        return None
    pairs = headers.items() if hasattr(headers, "items") else headers
    for name, value in pairs:
        if name == END_OF_STREAM_HEADER:
            return float(value.decode() if isinstance(value, bytes) else value)
    return None


async def publish(
    settings: Settings,
    records: Iterable[tuple[str, bytes, bytes]],
    *,
    rate: float = 0.0,
    end_of_stream: bool = False,
    acked: Callable[[str, int, int], None] | None = None,
) -> int:
    """Send ``(topic kind, key, value)`` records in order, paced at ``rate``/s (0 = flat out).

    ``acked(topic, partition, offset)`` is called for each record the broker acknowledged.

    With ``end_of_stream``, finish with a control record on every input partition that
    carries the largest event time sent: event-clock workers then release and decide
    everything up to it, as an in-memory replay of the same events does.
    """
    topic_of = {kind: name for name, kind in settings.topics.inputs().items()}
    servers = bootstrap_servers(settings.broker)
    producer = AIOKafkaProducer(
        bootstrap_servers=servers, linger_ms=5, acks=1, max_batch_size=256 * 1024,
        **client_kwargs(settings.kafka_security),
    )  # fmt: skip
    await start_client(producer, servers, settings.kafka_security, timeout_s=15)
    sent = 0
    last_ts = float("-inf")
    started = time.monotonic()
    pending: list[asyncio.Future[object]] = []
    try:
        for kind, key, value in records:
            future = await producer.send(topic_of[kind], value, key=key)
            if acked is not None:
                future.add_done_callback(_reporter(acked))
            pending.append(future)
            sent += 1
            if end_of_stream:
                last_ts = max(last_ts, _event_ts(value))
            if len(pending) >= 2000:
                await asyncio.gather(*pending)
                pending.clear()
            if rate > 0:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        if end_of_stream and sent:
            header = [(END_OF_STREAM_HEADER, repr(last_ts).encode())]
            for topic in topic_of.values():
                for partition in sorted(await producer.partitions_for(topic)):
                    pending.append(
                        await producer.send(topic, b"", partition=partition, headers=header)
                    )
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


def _reporter(acked: Callable[[str, int, int], None]) -> Callable[[asyncio.Future[Any]], None]:
    def report(future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is None:
            meta = future.result()
            acked(meta.topic, meta.partition, meta.offset)

    return report


def _event_ts(value: bytes) -> float:
    try:
        return parse_ts(orjson.loads(value)["ts"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return float("-inf")  # a malformed record carries no time


async def publish_synthetic(
    settings: Settings,
    events: int,
    *,
    seed: int,
    customers: int,
    bad: int,
    rate: float,
    end_of_stream: bool = False,
    skus: int = N_SKUS,
    farmer_share: float = 0.0,
    demand_shifts: int = 0,
) -> int:
    """Send ``events`` synthetic records (0 = until stopped); ``farmer_share``: coupon
    farmers added on top of ``customers`` (synthetic_farmers.py); ``demand_shifts``: SKUs
    whose views burst, extra records on top (synthetic_demand.py)."""
    shop = generate(
        events or UNBOUNDED, seed=seed, customers=customers, skus=skus, bad=bad,
        farmer_share=farmer_share,
    )  # fmt: skip
    shifted = with_demand_shifts(shop, shifts=demand_shifts, seed=seed)
    records = ((r.topic_kind, r.key, r.value) for r in shifted)
    return await publish(settings, records, rate=rate, end_of_stream=end_of_stream)


async def publish_campaigns(settings: Settings, campaigns: Iterable[tuple[bytes, Any]]) -> int:
    """Send ``(campaign id, flash_sale_announced body)`` pairs to the broadcast campaigns
    topic (keyed by campaign id)."""
    servers = bootstrap_servers(settings.broker)
    producer = AIOKafkaProducer(bootstrap_servers=servers, **client_kwargs(settings.kafka_security))
    await start_client(producer, servers, settings.kafka_security, timeout_s=15)
    sent = 0
    try:
        for key, body in campaigns:
            await producer.send_and_wait(settings.topics.campaigns, orjson.dumps(body), key=key)
            sent += 1
    finally:
        await producer.stop()
    return sent
