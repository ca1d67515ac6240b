"""The Kafka transport's read side, on a stand-in consumer: a worker's own deltas come
back keyed by its sender and are skipped undecoded; every other record is decoded."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson

from streamcrm.sharing.kafka import OWN, KafkaTransport


@dataclass
class FakeRecord:
    offset: int
    key: bytes | None
    value: bytes | None


class FakeConsumer:
    def __init__(self, records: list[FakeRecord]) -> None:
        self.records = records

    async def getmany(self, timeout_ms: int) -> dict[str, list[FakeRecord]]:
        records, self.records = self.records, []
        return {"tp": records}


def fetched(records: list[FakeRecord], own: str | None) -> tuple[list[tuple[int, Any]], list[Any]]:
    async def go() -> tuple[list[tuple[int, Any]], list[Any]]:
        transport = KafkaTransport("localhost:1")
        transport.consumer = FakeConsumer(list(records))  # type: ignore[assignment]
        with_offsets = await transport.fetch_records(0.0, own)
        transport.consumer = FakeConsumer(list(records))  # type: ignore[assignment]
        return with_offsets, await transport.fetch(0.0, own)

    return asyncio.run(go())


def test_own_records_are_skipped_by_key_and_others_decoded() -> None:
    mine = {"v": 1, "worker": "a", "seq": 1}
    theirs = {"v": 1, "worker": "b", "seq": 1}
    records = [
        FakeRecord(0, b"a", orjson.dumps(mine)),
        FakeRecord(1, b"b", orjson.dumps(theirs)),
        FakeRecord(2, b"a", b"not json, never decoded"),
        FakeRecord(3, b"b", b"not json"),
        FakeRecord(4, None, orjson.dumps(mine)),  # no key: decoded (the merge skips it)
    ]
    with_offsets, deltas = fetched(records, own="a")
    assert with_offsets == [(0, OWN), (1, theirs), (2, OWN), (3, None), (4, mine)]
    assert deltas == [theirs, None, mine]


def test_without_an_own_sender_everything_is_decoded() -> None:
    mine = {"v": 1, "worker": "a", "seq": 1}
    with_offsets, deltas = fetched([FakeRecord(7, b"a", orjson.dumps(mine))], own=None)
    assert with_offsets == [(7, mine)]
    assert deltas == [mine]
