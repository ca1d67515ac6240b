"""The snapshot writer's command packing: byte for byte what redis-py sends."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import Connection

from streamcrm.serving import OneJoinPacking


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
