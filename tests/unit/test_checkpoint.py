"""Learner checkpoints as data: exact round trips, incremental writes, hostile records."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import pickle
import random

import orjson
import pytest

from streamcrm.app import learner_store
from streamcrm.decisions import CrmConfig, Learners
from streamcrm.ingest import Processor, Record
from streamcrm.learning import checkpoint
from streamcrm.learning.candidates import CandidateStats
from streamcrm.learning.river_state import BadState
from streamcrm.replay.runner import KINDS
from streamcrm.state import CustomerState
from streamcrm.synthetic import generate


def run(processor: Processor, table: dict[str, CustomerState], records: list[Record]) -> str:
    """Feed records in batches of 50; a digest of every output."""
    digest = hashlib.sha256()
    for start in range(0, len(records), 50):
        chunk = records[start : start + 50]
        now = max(orjson.loads(r.value or b"{}").get("_t", 0.0) for r in chunk)
        batch = processor.process(chunk, table.get, now)
        for cid, (_, state) in sorted(batch.states.items()):
            table[cid] = state
            digest.update(orjson.dumps(state))
        for _, body in batch.offers + batch.coupons + batch.profile_events:
            digest.update(orjson.dumps(body))
    return digest.hexdigest()


def snapshot(learners: Learners) -> tuple[bytes, list[tuple[str, bytes]]]:
    stats = learners.candidates
    items = [(sku, checkpoint.dump_item(stats, sku)) for sku in stats.popularity]
    return checkpoint.dump_model(learners), [(k, v) for k, v in items if v is not None]


def shop_records(n: int) -> list[Record]:
    return [
        Record(r.topic_kind, 0, i, r.key, r.value)
        for i, r in enumerate(generate(n, seed=3, customers=300, skus=3000))
    ]


def fresh(max_skus: int = 600) -> Processor:
    processor = Processor(KINDS, crm=CrmConfig(), clock="event")
    processor.learners.candidates = CandidateStats(max_skus=max_skus)  # 600: evictions happen
    return processor


def test_a_restored_processor_decides_exactly_as_one_that_never_stopped() -> None:
    records = shop_records(6000)
    first, table = fresh(), {}
    run(first, table, records[:3000])
    model, items = snapshot(first.learners)
    restored = fresh()
    restored.learners, rejected = checkpoint.load(model, items, like=restored.learners)
    assert rejected == 0
    assert checkpoint.progress(restored.learners) == checkpoint.progress(first.learners) > 3000
    assert snapshot(restored.learners) == (model, items)
    twin_table = dict(table)
    restored.rebuild((cid, 0, state) for cid, state in twin_table.items())
    first_rest = run(first, table, records[3000:])
    assert run(restored, twin_table, records[3000:]) == first_rest


@pytest.mark.parametrize("max_skus", [600, 5000])
def test_incremental_writes_rebuild_the_same_learners(max_skus: int) -> None:
    processor, table = fresh(max_skus), {}
    store: dict[str, bytes] = {}
    synced: set[int] = set()
    records = shop_records(6000)
    for start in range(0, 6000, 300):
        run(processor, table, records[start : start + 300])
        touched = set(processor.learners.candidates._changed)
        writes = learner_store.writes(processor.learners, {0, 1}, synced, store)
        if synced:  # after the first full copy, exactly the changes (and the model record)
            assert sorted(k for _, k, _ in writes) == sorted(
                [
                    f"{p}/sku/{sku}"
                    for p in (0, 1)
                    for sku in touched
                    if sku in processor.learners.candidates.popularity or f"{p}/sku/{sku}" in store
                ]
                + ["0/model", "1/model"]
            )
        for _, key, value in writes:
            if value is None:
                store.pop(key, None)
            else:
                store[key] = value
        synced = {0, 1}
    tracked = len(processor.learners.candidates.popularity)
    assert len(touched) < tracked or max_skus == 600
    for partition in (0, 1):
        adopted, source = learner_store.adopt(fresh(max_skus).learners, store, {partition})
        assert source == partition
        (model, items), (want_model, want_items) = snapshot(adopted), snapshot(processor.learners)
        assert model == want_model and sorted(items) == sorted(want_items)  # the dict order of
        # SKUs differs (a store keeps a key's first place) and decides nothing: ties use seq
    assert len([k for k in store if k.startswith("0/sku/")]) == len(
        processor.learners.candidates.popularity
    )


def test_one_hundred_thousand_skus_round_trip() -> None:
    learners = Learners(candidates=CandidateStats(max_skus=100_000))
    rng = random.Random(1)
    recent: list[tuple[str, float]] = []
    for i in range(100_000):
        sku = f"s{i}"
        learners.candidates.observe(sku, f"c{i % 300}", round(rng.uniform(2, 90), 2),
                                    ts=float(i), weight=1.0, recent=recent[-3:])  # fmt: skip
        recent.append((sku, float(i)))
    store: dict[str, bytes] = {}
    for _, key, value in learner_store.writes(learners, {3}, set(), store):
        assert value is not None
        store[key] = value
    adopted, source = learner_store.adopt(Learners(), store, {3})
    assert source == 3 and len(adopted.candidates.popularity) == 100_000
    assert adopted.candidates.ranked(50) == learners.candidates.ranked(50)
    assert adopted.candidates.cooc["s500"] == learners.candidates.cooc["s500"]


HOSTILE = [
    pickle.dumps(Learners()),
    b"\x80\x04cos\nsystem\n(S'touch /tmp/pwned'\ntR.",
    b"not json",
    b"[]",
    b'[1.0, 2.0, 3, "c", 4.0, [["x", "__import__(\'os\')"]]]',
    b'[-1.0, 2.0, 3, "c", 4.0, []]',
    b'[1.0, 2.0, -3, "c", 4.0, []]',
    b'[1.0, 2.0, 3, "c", null, []]',
    b'[1.0, 2.0, 3, {"__class__": "x"}, 4.0, []]',
    b'[1e999, 2.0, 3, "c", 4.0, []]',
    b'[true, 2.0, 3, "c", 4.0, []]',
]


def test_hostile_or_corrupt_records_are_rejected_never_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    learners = Learners()
    learners.candidates.observe("good", "c", 5.0, ts=1.0, weight=1.0, recent=[])
    model, items = snapshot(learners)
    store = {"0/model": model, **{f"0/sku/{k}": v for k, v in items}}
    store.update({f"0/sku/bad{i}": blob for i, blob in enumerate(HOSTILE)})
    with caplog.at_level(logging.WARNING):
        adopted, source = learner_store.adopt(Learners(), store, {0})
    assert source == 0 and list(adopted.candidates.popularity) == ["good"]
    assert f"{len(HOSTILE)} bad SKU records left out" in caplog.text
    for blob in HOSTILE:
        with caplog.at_level(logging.WARNING):
            kept, source = learner_store.adopt(learners, {"1/model": blob}, {1})
        assert kept is learners and source is None
    assert "ignoring the learners checkpoint of partition 1" in caplog.text


def test_mutated_model_records_raise_bad_state_or_load() -> None:
    learners = Learners()
    learners.ranker.learn_one({"bias": 1.0, "cooc": 0.5}, True)
    learners.rfm.learn_one(recency_days=1.0, frequency=2.0, monetary=3.0)
    valid = orjson.loads(checkpoint.dump_model(learners))
    rng = random.Random(7)
    junk = [None, True, -1, 1e308, "x" * 2000, [], {}, [[1, 2, 3]], math.pi, "__import__"]

    def paths(node: object, path: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        if isinstance(node, dict):
            return [path] + [p for k, v in node.items() for p in paths(v, (*path, k))]
        if isinstance(node, list):
            return [path] + [p for i, v in enumerate(node) for p in paths(v, (*path, i))]
        return [path]

    every = [p for p in paths(valid) if p]
    for _ in range(1500):
        doc = orjson.loads(orjson.dumps(valid))
        *parent, last = rng.choice(every)
        node = doc
        for step in parent:
            node = node[step]
        node[last] = rng.choice(junk)
        with contextlib.suppress(BadState):
            checkpoint.load(orjson.dumps(doc), [], like=Learners())
