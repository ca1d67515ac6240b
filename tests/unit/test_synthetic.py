"""The synthetic storefront: deterministic, coherent, and its bad records are really bad."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from streamcrm.events import InvalidEvent, decode
from streamcrm.synthetic import MALFORMED_KINDS, generate


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    assert list(generate(500, seed=3, bad=10)) == list(generate(500, seed=3, bad=10))
    assert list(generate(500, seed=3)) != list(generate(500, seed=4))


def test_exact_counts_and_every_bad_kind_is_rejected_with_its_reason() -> None:
    records = list(generate(3000, seed=9, customers=50, bad=60))
    assert len(records) == 3000
    bad = [r for r in records if r.malformed]
    assert len(bad) == 60
    assert set(Counter(r.malformed for r in bad)) == set(MALFORMED_KINDS)
    for record in records:
        if record.malformed is None:
            decode(record.value, topic_kind=record.topic_kind, key=record.key)
        else:
            with pytest.raises(InvalidEvent) as info:
                decode(record.value, topic_kind=record.topic_kind, key=record.key)
            assert info.value.reason == record.malformed


def test_histories_are_coherent() -> None:
    last_ts: dict[str, float] = {}
    ids: set[str] = set()
    carts: set[str] = set()
    ordered: set[str] = set()
    for record in generate(20_000, seed=7, customers=2000):
        event = decode(record.value, topic_kind=record.topic_kind, key=record.key)
        assert event.ts >= last_ts.get(event.customer_id, 0.0)
        last_ts[event.customer_id] = event.ts
        assert event.event_id not in ids
        ids.add(event.event_id)
        if event.type == "cart_item_added":
            carts.add(event.body["cart_id"])
        if event.type == "order_placed":
            lines = event.body["lines"]
            assert event.body["total"] == round(sum(x["qty"] * x["unit_price"] for x in lines), 2)
            ordered.add(event.body["cart_id"])
    abandoned = 1 - len(carts & ordered) / len(carts)
    assert 0.5 <= abandoned <= 0.85, abandoned
    assert len(last_ts) > 1500  # most customers show up (first visits spread over a gap)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot exceed"):
        list(generate(5, seed=1, bad=6))
    with pytest.raises(ValueError, match="customers >= 1"):
        list(generate(5, seed=1, customers=0))


def test_valid_records_are_json_objects_keyed_by_customer() -> None:
    for record in generate(200, seed=2):
        body = orjson.loads(record.value)
        assert record.key == body["customer_id"].encode()


def test_a_large_catalogue_is_long_tailed_and_spread_over_many_categories() -> None:
    views: Counter[str] = Counter()
    categories: set[str] = set()
    for record in generate(20_000, seed=5, customers=2000, skus=100_000):
        body = orjson.loads(record.value)
        if body["type"] == "product_viewed":
            views[body["sku"]] += 1
            categories.add(body["category"])
    assert len(categories) > 150
    assert len(views) > 5000
    counts = sorted(views.values(), reverse=True)
    assert sum(counts[: len(counts) // 100]) > 10 * sum(counts[-len(counts) // 100 :])
