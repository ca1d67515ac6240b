"""The changelog's compact state encoding round-trips every state of a synthetic run,
reads the plain form too, and is smaller."""

from __future__ import annotations

from typing import Any

import orjson

from streamcrm.bench.scaling import workload
from streamcrm.decisions import CrmConfig
from streamcrm.ingest import Processor
from streamcrm.replay.runner import KINDS
from streamcrm.state import CustomerState, OfferState
from streamcrm.state_codec import FEATURE_NAMES, decode, encode


def test_every_state_round_trips_and_shrinks() -> None:
    processor = Processor(KINDS, crm=CrmConfig(), clock="event")
    table: dict[str, CustomerState] = {}
    for records, now in workload(2_000, 6_000, 300, seed=3):
        for cid, (_, state) in processor.process(records, table.get, now).states.items():
            table[cid] = state
    states = list(table.values())
    assert any(s.offer is not None and s.offer.items for s in states)
    assert any(s.recent_views for s in states) and any(s.cart for s in states)
    for state in states:
        assert decode(encode(state)) == state
        assert decode(orjson.dumps(state)) == state  # the plain form, as written before
    compact = sum(len(encode(s)) for s in states)
    plain = sum(len(orjson.dumps(s)) for s in states)
    assert compact < 0.8 * plain


def _offer_state(items: tuple[Any, ...], skus: tuple[str, ...]) -> CustomerState:
    offer = OfferState(
        "nbo-1", 5.0, items, skus=skus, eval_model=("a", "b"), eval_popular=("c", "a"),
        eval_lists=(("recent", ("b",)), ("cooc", ())),
    )  # fmt: skip
    return CustomerState("c1", 1.0, 5.0, offer=offer)


def test_offer_features_are_values_and_evaluation_lists_positions() -> None:
    x = tuple((name, float(i)) for i, name in enumerate(FEATURE_NAMES))
    state = _offer_state((("a", x), ("b", x)), ("a", "b"))
    data = orjson.loads(encode(state))["offer"]
    assert "items" not in data and "features" not in data  # the ranker's names: implied
    assert data["x"] == [list(range(len(FEATURE_NAMES)))] * 2
    assert data["eval"] == [["a", "b", "c"], [0, 1], [2, 0], [["recent", [1]], ["cooc", []]]]
    assert decode(encode(state)) == state


def test_other_feature_names_and_items_apart_from_skus_round_trip() -> None:
    named = _offer_state((("a", (("f", 1.0), ("g", 0.5))),), ("a",))
    assert orjson.loads(encode(named))["offer"]["features"] == ["f", "g"]
    apart = _offer_state((("b", (("f", 1.0),)),), ("a",))  # not the shown list: kept as items
    assert "items" in orjson.loads(encode(apart))["offer"]
    closed = _offer_state((), ("a",))  # the reward window closed: no features
    for state in (named, apart, closed):
        assert decode(encode(state)) == state


def test_the_earlier_compact_offer_is_read() -> None:
    x = (("f", 1.0), ("g", 0.5))
    state = _offer_state((("a", x),), ("a",))
    earlier = orjson.loads(orjson.dumps(state))
    earlier["offer"] |= {"features": ["f", "g"], "items": [["a", [1.0, 0.5]]]}
    assert decode(orjson.dumps(earlier)) == state
