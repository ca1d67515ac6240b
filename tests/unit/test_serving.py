"""The snapshot writer: command packing byte for byte as redis-py's; what a failed write keeps."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import Connection

from streamcrm.serving import OneJoinPacking, SnapshotWriter
from streamcrm.tansu import free_port


class OneJoinConnection(OneJoinPacking, Connection):
    pass


@pytest.mark.parametrize(
    "args",
    [
        ("HSET", "streamcrm:customer:c1", *[x for i in range(25) for x in (f"f{i}", f"v{i}")]),
        ("HSET", b"k", "é ü 中", b"\x00\xff", 7, 2.5),
        ("CONFIG GET", "maxmemory"),
        (b"CLIENT SETNAME", b"x"),
        ("SET", "big", "x" * 100_000),
        ("PING",),
    ],
)
def test_packing_matches_redis_py(args: tuple[Any, ...]) -> None:
    ours = b"".join(OneJoinConnection().pack_command(*args))
    theirs = b"".join(Connection().pack_command(*args))
    assert ours == theirs


async def test_a_failed_write_keeps_every_snapshot_and_its_age() -> None:
    """Nothing listens on the port: each write fails as it does when Redis is down."""
    writer = SnapshotWriter(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5)
    outcomes: list[bool] = []
    writer.on_result = outcomes.append
    try:
        assert writer.oldest_unsynced() is None
        writer.stage("k1", {"a": "1"})
        first = writer.oldest_unsynced()
        writer.stage("k2", {"a": "2"})
        writer.stage("k1", {"a": "3"})  # newer state, same customer: still unsynced since first
        assert writer.pending == 2 and writer.oldest_unsynced() == first
        writer.flush_soon()
        assert writer.writing
        writer.stage("k3", {"a": "4"})  # staged while the write is under way
        assert writer.oldest_unsynced() == first
        left = await writer.drain(0.3, retry_s=0.05)
        assert outcomes and not any(outcomes)
        assert left == writer.pending == 3
        assert writer.oldest_unsynced() == first
        assert sorted(writer.staged_keys()) == ["k1", "k2", "k3"]
        assert writer.stats.errors == len(outcomes) and writer.stats.last_error
        writer.discard(["k1", "k9"])
        assert writer.pending == 2 and writer.oldest_unsynced() != first
        assert await writer.probe(["m"]) is None
        assert await writer.set_markers(["m"], "1") is False
    finally:
        await writer.close()


async def test_a_staged_delete_wins_over_a_failed_write_of_the_same_key() -> None:
    """An erasure's delete, staged while the write of that customer fails, is kept; the
    customer's old snapshot is not retried (it would bring the erased hash back)."""
    writer = SnapshotWriter(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5)
    try:
        writer.stage("k1", {"a": "1"})
        writer.stage("k2", {"a": "2"})
        writer.flush_soon()
        writer.stage_delete("k1")  # while the write holding k1 is under way
        await writer.drain(0.3, retry_s=0.05)
        assert writer.staged_keys() == ["k2"] and writer.pending == 2  # k2's write, k1's delete
        writer.stage("k1", {"a": "new customer"})  # written after the delete
        assert sorted(writer.staged_keys()) == ["k1", "k2"] and writer.pending == 2
    finally:
        await writer.close()
