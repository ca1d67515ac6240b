"""A handover with sharing on: the adopted checkpoint plus the learning topic read from
the offset it records hold every interaction exactly once (nothing re-sent, nothing
re-merged), whatever was learned where and when."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamcrm.decisions import Learners
from streamcrm.learning import checkpoint
from streamcrm.learning.river_state import BadState
from streamcrm.sharing import handover
from streamcrm.sharing.learners import Peer, start

Event = tuple[int, int, int]  # worker (0: a, 1: b), sku, phase (0: before a's checkpoint)


class Worker:
    def __init__(self, name: str, learners: Learners | None = None) -> None:
        self.learners = learners or Learners()
        self.peer = Peer(name)
        self.read = 0  # next topic offset
        start(self.learners)

    def learn(self, sku: int, ts: float) -> None:
        self.learners.candidates.observe(f"s{sku}", "c", 10.0, ts=ts, weight=1.0, recent=[])
        self.learners.rfm.learn_one(recency_days=sku, frequency=1.0, monetary=10.0 + sku)
        self.learners.ranker.learn_one({"f": float(sku)}, sku % 2 == 0)

    def exchange(self, topic: list[Any]) -> None:
        delta = self.peer.export(self.learners)
        if delta is not None:
            topic.append(orjson.loads(orjson.dumps(delta)))  # as it travels
        for delta in topic[self.read :]:
            self.peer.merge(self.learners, delta)
        self.read = len(topic)


def checkpointed(worker: Worker, topic: list[Any]) -> tuple[bytes, list[tuple[str, bytes]], bytes]:
    """What the worker's checkpoint timer writes: export first, then the snapshot."""
    delta = worker.peer.export(worker.learners)
    stats = worker.learners.candidates
    model = checkpoint.dump_model(worker.learners)
    items = [(sku, checkpoint.dump_item(stats, sku) or b"") for sku in stats.popularity]
    record = handover.record(model, worker.read, dict(worker.peer.seen), worker.learners.rfm)
    if delta is not None:
        topic.append(orjson.loads(orjson.dumps(delta)))  # published after the snapshot
    return model, items, record


def adopt(model: bytes, items: list[tuple[str, bytes]], record: bytes, topic: list[Any]) -> Worker:
    learners, rejected = checkpoint.load(model, items, like=Learners())
    assert rejected == 0
    point = handover.resume(record, model)
    assert point is not None
    handover.baseline(learners, point.rfm)
    worker = Worker("c", learners)
    worker.peer.seen.update(point.seen)
    worker.read = point.offset
    return worker


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 6), st.integers(0, 1)), max_size=60))
def test_adopting_a_checkpoint_and_reading_on_counts_every_interaction_once(
    events: list[Event],
) -> None:
    a, b, topic = Worker("a"), Worker("b"), []
    expected: dict[str, float] = {}
    ckpt = None
    for phase in (0, 1):
        for n, (who, sku, when) in enumerate(events):
            if when == phase:
                (a, b)[who].learn(sku, 1.7e9 + n)
                expected[f"s{sku}"] = expected.get(f"s{sku}", 0.0) + 1.0
            if n % 7 == 0:
                (a, b)[n % 2].exchange(topic)
        if phase == 0:
            ckpt = checkpointed(a, topic)
    assert ckpt is not None
    a.exchange(topic)  # a publishes what it learned since, then leaves
    b.exchange(topic)
    c = adopt(*ckpt, topic)
    assert c.peer.export(c.learners) is None  # the adopted model is not sent again
    c.exchange(topic)
    for worker in (b, c):
        assert worker.learners.candidates.counts == pytest.approx(expected)
        assert worker.learners.rfm.seen == len(events)
        assert worker.learners.ranker.labels == len(events)
    b.exchange(topic)
    assert b.learners.candidates.counts == pytest.approx(expected)
    assert b.learners.ranker.labels == len(events)


def test_a_sharing_record_of_another_model_is_ignored_and_garbage_rejected() -> None:
    learners = Learners()
    start(learners)
    model = checkpoint.dump_model(learners)
    record = handover.record(model, 3, {"a": 2}, learners.rfm)
    point = handover.resume(record, model)
    assert point is not None and point.offset == 3 and point.seen == {"a": 2}
    assert handover.resume(record, model + b" ") is None  # written for another model
    assert handover.resume(None, model) is None
    for bad in (b"not json", b"[]", orjson.dumps({"v": 1, "model": handover.digest(model)})):
        with pytest.raises(BadState):
            handover.resume(bad, model)


def test_the_population_rfm_sketch_comes_back_with_the_checkpoint() -> None:
    worker = Worker("a")
    for day in range(50):
        worker.learn(day, 1.7e9 + day)
    model, items, record = checkpointed(worker, [])
    adopted = adopt(model, items, record, [])
    kwargs = {"recency_days": 10.0, "frequency": 1.0, "monetary": 30.0}
    assert adopted.learners.rfm.score_one(**kwargs) == worker.learners.rfm.score_one(**kwargs)
