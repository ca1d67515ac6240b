"""Demand deltas re-keyed by SKU, on a simulated clock: batching per worker and merging on
the owner counts what the event-by-event core counts, decides as it does for one worker,
and a record that is not a delta is rejected by its reason, never raised past."""

from __future__ import annotations

import random
import zlib
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamcrm.events import Event
from streamcrm.pricing.deltas import MAX_PENDING_ROWS, MAX_ROWS, BadDelta, DemandDeltas, decode
from streamcrm.pricing.owner import SkuOwner
from streamcrm.pricing.suggest import PricingConfig
from streamcrm.pricing.table import SkuTable

H = 3600.0
CFG = PricingConfig()
KINDS = ("product_viewed", "cart_item_added", "order_placed")


def event(kind: str, sku: str, ts: float, customer: str = "c1") -> Event:
    if kind == "order_placed":
        body: dict[str, Any] = {"lines": [{"sku": sku, "qty": 1, "unit_price": 5.0}]}
    else:
        body = {"sku": sku, "category": "x", "price": 5.0}
    return Event(f"e{ts}{sku}{customer}", kind, customer, ts, "web", None, body)


def by_event(events: list[Event]) -> tuple[SkuTable, list[dict[str, Any]]]:
    table, out = SkuTable(), []
    for e in events:
        out += table.observe(e, CFG)
    return table, out


def by_delta(events: list[Event], batch: int, workers: int) -> tuple[SkuTable, list[dict[str, Any]]]:
    """Each batch split over ``workers`` by customer; every worker's records then merged."""
    table, out = SkuTable(), []
    for start in range(0, len(events), batch):
        deltas = [DemandDeltas(CFG.demand.bucket_s) for _ in range(workers)]
        for e in events[start : start + batch]:
            deltas[zlib.crc32(e.customer_id.encode()) % workers].observe(e)
        for d in deltas:
            for _key, value in d.take():
                sku, rows, _, _ = decode(value)
                for ts, counts in rows:
                    out += table.add_counts(sku, counts, ts, CFG)
    return table, out


def traffic(rng: random.Random, hours: float, skus: int, burst: str | None = None) -> list[Event]:
    """Poisson views / cart adds / orders on ``skus`` SKUs; ``burst`` gets ten times the
    cart adds from hour 10 to 11."""
    out, t = [], 0.0
    while (t := t + rng.expovariate(0.02)) < hours * H:  # ~72 events an hour
        sku = f"s{rng.randrange(skus)}"
        out.append(event(rng.choice(KINDS), sku, t, f"c{rng.randrange(40)}"))
        if burst and 10 * H <= t < 11 * H and rng.random() < 0.5:
            out.append(event("cart_item_added", burst, t + 1, f"c{rng.randrange(40)}"))
    return sorted(out, key=lambda e: e.ts)  # in event time, as a replay applies them


def state(table: SkuTable, *, approx: bool = False) -> dict[str, tuple[Any, ...]]:
    """Each SKU's windows exactly, its baseline to 1e-9 (the decay is applied in other
    steps when folds happen at other moments: exp(-a) exp(-b) is not exp(-a-b) in floats)."""
    return {
        s: (d.buckets, pytest.approx(d.baseline, rel=1e-9) if approx else d.baseline,
            d.folded_to, d.first_bucket)
        for s in table.skus() if (d := table.get(s))
    }  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 30), st.integers(1, 4))
def test_merged_deltas_count_what_events_count(seed: int, batch: int, workers: int) -> None:
    """Any batching over any number of workers: the same windows and baselines. Batches
    span far less than the 1 h window here (30 events: about 25 min of this traffic), so
    no row arrives too late for it; a batch of 55-60 events can span more than the
    window, and another worker's rows of its first bucket then arrive after the window
    moved past them (the worker's hold-back and its limits: README, "Price suggestions")."""
    events = traffic(random.Random(seed), 20, 5)
    assert state(by_delta(events, batch, workers)[0]) == state(by_event(events)[0], approx=True)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 80))
def test_one_worker_suggests_exactly_what_the_event_by_event_core_suggests(seed: int, batch: int) -> None:
    events = traffic(random.Random(seed), 16, 3, burst="s0")
    assert by_delta(events, batch, 1)[1] == by_event(events)[1]


def test_a_burst_across_customers_gives_one_suggestion_and_steady_skus_none() -> None:
    events = traffic(random.Random(5), 20, 4, burst="s0")
    _, out = by_delta(events, 50, 3)
    assert [(s["sku"], s["direction"], s["evidence"]["metric"]) for s in out] == [("s0", "up", "cart_adds")]
    assert out[0]["change_percent"] == 15.0
    assert 10 * H <= float(out[0]["event_id"].rsplit("-", 1)[1]) < 11 * H  # rate limit: not again


def test_a_row_too_old_for_the_window_is_dropped_and_an_older_bucket_is_not_tested() -> None:
    table = SkuTable()
    table.add_counts("s", (1, 0, 0), 2 * H, CFG)
    table.add_counts("s", (5, 0, 0), 0.5 * H, CFG)  # more than the window behind: dropped
    table.add_counts("s", (2, 0, 0), 1.9 * H, CFG)  # late, within the window: counted
    demand = table.get("s")
    assert demand is not None and sum(c[0] for _, c in demand.buckets) == 3


def test_deltas_are_one_small_record_per_sku_and_split_past_max_rows() -> None:
    deltas = DemandDeltas(CFG.demand.bucket_s)
    for i in range(MAX_ROWS + 3):
        deltas.observe(event("product_viewed", "s1", i * CFG.demand.bucket_s))
    deltas.observe(event("search_performed", "s2", 0.0))  # names no SKU: nothing
    records = deltas.take()
    assert [k for k, _ in records] == [b"s1", b"s1"]
    assert [len(decode(v)[1]) for _, v in records] == [MAX_ROWS, 3]
    assert max(len(v) for _, v in records[1:]) < 100


BAD = [
    (b"", "invalid_json"), (b"[1]", "not_an_object"), (b'{"sku": 1, "rows": [[1, 1, 0, 0]]}', "schema_violation"),
    (b'{"sku": "s", "rows": []}', "schema_violation"), (b'{"sku": "s", "rows": [[1, 1, 0]]}', "schema_violation"),
    (b'{"sku": "s", "rows": [[1, 0, 0, 0]]}', "schema_violation"),
    (b'{"sku": "s", "rows": [[1e300, 1, 0, 0]]}', "schema_violation"),
    (b'{"sku": "s", "rows": [[1, 1.5, 0, 0]]}', "schema_violation"),
    (b'{"sku": "s", "rows": [["x", 1, 0, 0]]}', "schema_violation"),
    (b'{"sku": "s", "rows": [[1, 1, 0, 0]], "sender": "w"}', "schema_violation"),
    (b'{"sku": "s", "rows": [[1, 1, 0, 0]], "sender": 1, "seq": 1}', "schema_violation"),
    (b'{"sku": "s", "rows": [[1, 1, 0, 0]], "sender": "w", "seq": 0}', "schema_violation"),
]  # fmt: skip


@pytest.mark.parametrize(("value", "reason"), BAD)
def test_bad_records_are_rejected_with_their_reason(value: bytes, reason: str) -> None:
    with pytest.raises(BadDelta) as caught:
        decode(value)
    assert caught.value.reason == reason


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.sampled_from(["sku", "rows", "sender", "seq", "x"]), inner),
    max_leaves=20,
)


@given(JSON)
def test_any_record_decodes_or_is_rejected_never_raises_otherwise(data: Any) -> None:
    try:
        sku, rows, _, _ = decode(orjson.dumps(data))
    except BadDelta:
        return
    table = SkuTable()
    for ts, counts in rows:  # a record that decodes is safe to merge
        table.add_counts(sku, counts, ts, CFG)


def test_a_bucket_is_held_until_every_partition_has_passed_it() -> None:
    bucket = CFG.demand.bucket_s
    deltas = DemandDeltas(bucket)
    for ts in (10.0, bucket + 10.0, 2 * bucket + 10.0):
        deltas.observe(event("product_viewed", "s1", ts))
    assert deltas.take(float("-inf")) == []  # a partition has no watermark yet
    sent = b'{"sku":"s1","rows":[[10.0,1,0,0]],"sender":"","seq":1}'
    assert deltas.take(bucket + 20.0) == [(b"s1", sent)]
    assert deltas.rows == 2
    assert [len(decode(v)[1]) for _, v in deltas.take(10 * bucket)] == [2]
    assert deltas.take(None) == [] and deltas.rows == 0


def test_held_rows_past_the_cap_are_all_sent() -> None:
    deltas = DemandDeltas(1.0)
    for i in range(MAX_PENDING_ROWS + 1):
        deltas.observe(event("product_viewed", f"s{i % 1000}", float(i)))
    assert sum(len(decode(v)[1]) for _, v in deltas.take(float("-inf"))) == MAX_PENDING_ROWS + 1


def sent(events: list[Event], batch: int, workers: int) -> list[bytes]:
    """The records ``workers`` senders send, batch by batch (each numbers its own)."""
    deltas = [DemandDeltas(CFG.demand.bucket_s, sender=f"w{i}") for i in range(workers)]
    out = []
    for start in range(0, len(events), batch):
        for e in events[start : start + batch]:
            deltas[zlib.crc32(e.customer_id.encode()) % workers].observe(e)
        out += [value for d in deltas for _, value in d.take()]
    return out


def merged(owner: SkuOwner, records: list[bytes]) -> list[dict[str, Any]]:
    return [s for value in records for s in owner.merge(decode(value), CFG) or ()]


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 60), st.integers(1, 3), st.data())
def test_a_redelivered_delta_changes_nothing(seed: int, batch: int, workers: int, data: st.DataObject) -> None:
    """Records sent twice in a row (a producer retry) and a stretch read again by an owner
    restored from the stored records (a crash before the offset commit): the states and
    the suggestions of one delivery each."""
    records = sent(traffic(random.Random(seed), 16, 3, burst="s0"), batch, workers)
    once = SkuOwner()
    expected = merged(once, records)
    twice = sorted(data.draw(st.sets(st.integers(0, len(records) - 1), max_size=10)))
    delivered = [v for i, v in enumerate(records) for _ in range(2 if i in twice else 1)]
    cut = data.draw(st.integers(0, len(delivered)))
    back = data.draw(st.integers(0, cut))  # the last committed offset: read again from here
    first = SkuOwner()
    out = merged(first, delivered[:cut])
    restored = SkuOwner()
    for sku in first.table.skus():
        value = first.stored(sku)
        assert value is not None
        restored.restore(value)
    out += merged(restored, delivered[back:])
    assert out == expected
    assert state(restored.table) == state(once.table)
    assert first.duplicates + restored.duplicates == len(twice) + (cut - back)
