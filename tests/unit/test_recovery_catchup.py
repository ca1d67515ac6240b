"""The changelog catch-up after a recovery never writes an older state over a newer one.

Faust runs a table's ``on_recover`` callbacks as tasks of their own
(``Recovery.on_recovery_completed``: ``asyncio.ensure_future`` per table, then
``asyncio.wait``). When another rebalance starts, the recovery is cancelled
(``Recovery._wait`` -> ``RebalanceAgain``; ``Service.wait_first`` cancels what it
awaited), but not those tasks: the catch-up of the interrupted generation runs on while
the next generation recovers and starts applying batches. Its tail was read before
them; written late, it sets a customer back, and the events applied in between are lost
for good (the next batch builds on the older state; their offsets are committed).

These drive the worker's real recovery callback (``attach_recovery``) against plain
stand-ins for the app and its tables; the broker read (``changelog_tail``) is replaced by
one that returns what the changelog held when the read began and blocks until released.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

import orjson
import pytest

from streamcrm.app import agents
from streamcrm.config import Settings
from streamcrm.state import CustomerState


class _Topic:
    def __init__(self, name: str) -> None:
        self.name = name

    def get_topic_name(self) -> str:
        return self.name


class _Table:
    """What the callback uses of a Faust table: its data, changelog name, on_recover."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.data: dict[str, Any] = {}
        self.changelog_topic = _Topic(f"{name}-changelog")
        self.recover: list[Callable[[], Any]] = []

    def on_recover(self, fun: Callable[[], Any]) -> Callable[[], Any]:
        self.recover.append(fun)
        return fun

    def items(self) -> Iterable[tuple[str, Any]]:
        return self.data.items()


class _Consumer:
    def __init__(self, topics: Iterable[str]) -> None:
        self.topics = list(topics)

    def assignment(self) -> set[Any]:
        return {(t, 0) for t in self.topics}


class _App:
    """The generation and assignment as the callback reads them, and a no-op timer."""

    def __init__(self, topics: Iterable[str]) -> None:
        self.consumer_generation_id = 1
        self.rebalancing = False
        self.consumer = _Consumer(topics)

    def timer(self, _interval: float) -> Callable[[Any], Any]:
        return lambda fun: fun


class _Tp(tuple[str, int]):
    @property
    def topic(self) -> str:
        return self[0]

    @property
    def partition(self) -> int:
        return self[1]


def _state(applied: int) -> CustomerState:
    return CustomerState("c1", 0.0, 0.0, events_applied=applied)


@pytest.fixture
def recovery(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The callback of a worker whose changelog tail read stalls until ``release`` is set."""
    settings = Settings(partitions=1)
    inputs = settings.topics.inputs()
    app = _App(inputs)
    app.consumer.assignment = lambda: {_Tp((t, 0)) for t in inputs}  # type: ignore[method-assign]
    customers, learners, markers = _Table("customers"), _Table("learners"), _Table("markers")
    release = asyncio.Event()
    # What the customers changelog held when the read began: the state after 10 events.
    changelog = {customers.changelog_topic.name: [(0, b"c1", orjson.dumps(_state(10)))]}

    async def stalled_tail(
        _broker: str, topic: str, _partitions: Iterable[int], **_: Any
    ) -> list[tuple[int, bytes, bytes | None]]:
        records = list(changelog.get(topic, []))
        await release.wait()
        return records

    monkeypatch.setattr(agents, "changelog_tail", stalled_tail)
    processor = agents.processor_for(settings)
    agents.attach_recovery(app, settings, processor, customers, learners, markers)
    return {"app": app, "customers": customers, "release": release, "run": customers.recover[0]}


async def test_a_tail_read_before_a_newer_generation_never_overwrites_its_states(
    recovery: dict[str, Any],
) -> None:
    app, customers = recovery["app"], recovery["customers"]
    customers.data["c1"] = _state(10)  # Faust's own restore
    catch_up = asyncio.ensure_future(recovery["run"]())  # generation 1's callback
    await asyncio.sleep(0)
    # Another rebalance: generation 2 recovers and applies 5 more events of c1.
    app.consumer_generation_id = 2
    customers.data["c1"] = _state(15)
    recovery["release"].set()  # generation 1's read comes back late
    await catch_up
    assert customers.data["c1"].events_applied == 15


async def test_a_tail_read_in_the_current_generation_is_applied(
    recovery: dict[str, Any],
) -> None:
    customers = recovery["customers"]
    customers.data["c1"] = _state(9)  # the restore stopped one batch short (Tansu's end)
    recovery["release"].set()
    await recovery["run"]()
    assert customers.data["c1"].events_applied == 10
