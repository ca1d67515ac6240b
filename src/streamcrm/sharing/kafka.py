"""The Kafka transport of learner deltas: one topic every worker reads whole. Shell only.

``<app-id>-learning`` in the worker (:func:`learning_topic`; ``streamcrm.learning`` by
default here), one partition, delete policy: each worker produces its deltas
keyed by its sender id and reads the topic from its own position with an assigned
consumer outside the consumer group, so every worker sees every delta, in one order.
Not compacted: a delta is an increment, and compaction keeps only each key's latest.
The topic's retention only has to cover a restart: a checkpoint records the offset up to
which it includes merged deltas (README, "How state and learning are distributed").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streamcrm.kafka_security import KafkaSecurity, client_kwargs
from streamcrm.learning.river_state import BadState
from streamcrm.sharing.learners import LearnerSet, Peer

LEARNING_TOPIC = "streamcrm.learning"


class _Own:
    """:func:`read_records`' marker for the reader's own delta, skipped undecoded."""

    def __repr__(self) -> str:
        return "<own>"


OWN = _Own()


def learning_topic(app_id: str) -> str:
    """A worker's learning topic: one per app id, as its tables' changelogs are."""
    return f"{app_id}-learning"


class KafkaTransport:
    def __init__(
        self, bootstrap: str, topic: str = LEARNING_TOPIC, security: KafkaSecurity | None = None,
        *, fetch_max_wait_ms: int = 500,
    ) -> None:  # fmt: skip
        self.topic = topic
        security = security or KafkaSecurity()
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **client_kwargs(security))
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
            auto_offset_reset="earliest", fetch_max_wait_ms=fetch_max_wait_ms,
            **client_kwargs(security),
        )  # fmt: skip
        self.bytes = 0
        self.messages = 0
        self.bytes_read = 0

    async def start(self, from_offset: int | None = None) -> None:
        await self.producer.start()
        await self.consumer.start()
        partition = TopicPartition(self.topic, 0)
        self.consumer.assign([partition])
        if from_offset is not None:
            self.consumer.seek(partition, from_offset)

    async def stop(self) -> None:
        await self.consumer.stop()
        await self.producer.stop()

    async def publish(self, sender: str, delta: dict[str, Any]) -> None:
        payload = orjson.dumps(delta)
        await self.producer.send_and_wait(self.topic, payload, key=sender.encode(), partition=0)
        self.bytes += len(payload)
        self.messages += 1

    def seek(self, offset: int) -> None:
        self.consumer.seek(TopicPartition(self.topic, 0), offset)

    async def seek_to_end(self) -> int:
        """Read on from the end; the offset it is at."""
        partition = TopicPartition(self.topic, 0)
        await self.consumer.seek_to_end(partition)
        offset: int = await self.consumer.position(partition)
        return offset

    async def fetch_records(
        self, timeout_s: float, own: str | None = None
    ) -> list[tuple[int, Any]]:
        """:func:`read_records` of what arrived since the last fetch."""
        batches = await self.consumer.getmany(timeout_ms=int(timeout_s * 1000))
        records = [(r.offset, r.key, r.value) for rs in batches.values() for r in rs]
        self.bytes_read += sum(len(value or b"") for _, _, value in records)
        return read_records(records, own)

    async def fetch(self, timeout_s: float, own: str | None = None) -> list[Any]:
        """What arrived since the last fetch but the reader's own (keyed ``own``); a record
        that is not JSON is None here and is rejected by the merge (counted by the caller)."""
        records = await self.fetch_records(timeout_s, own)
        return [delta for _, delta in records if delta is not OWN]


def read_records(
    records: Iterable[tuple[int, bytes | None, bytes | None]], own: str | None
) -> list[tuple[int, Any]]:
    """(offset, decoded delta, None if not JSON, or :data:`OWN`) per (offset, key, value).

    A record keyed ``own`` (the reader's sender id: :meth:`KafkaTransport.publish` keys
    each delta by its sender) is its own delta come back, which the merge would skip: it
    is not decoded (with N workers, 1/N of what each reads).

    >>> read_records([(0, b"a", b"{}"), (1, b"b", b'{"v":1}'), (2, b"b", b"x")], own="a")
    [(0, <own>), (1, {'v': 1}), (2, None)]
    """
    skip = None if own is None else own.encode()
    out: list[tuple[int, Any]] = []
    for offset, key, value in records:
        if skip is not None and key == skip:
            out.append((offset, OWN))
            continue
        try:
            out.append((offset, orjson.loads(value or b"")))
        except orjson.JSONDecodeError:
            out.append((offset, None))
    return out


async def share_once(
    peer: Peer, learners: LearnerSet, transport: KafkaTransport, *, timeout_s: float = 0.1
) -> tuple[int, int]:
    """One exchange for one worker: publish what it learned, merge what arrived.
    Returns (merged, rejected)."""
    delta = peer.export(learners)
    if delta is not None:
        await transport.publish(peer.worker, delta)
    merged = rejected = 0
    for received in await transport.fetch(timeout_s, own=peer.worker):
        try:
            merged += int(peer.merge(learners, received))
        except BadState:
            rejected += 1
    return merged, rejected
