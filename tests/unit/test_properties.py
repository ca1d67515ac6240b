"""Property-based tests of the decision core over open-ended input (hypothesis).

What must hold for any input: ``Processor.process`` never raises; every record is
accounted for (applied + duplicate + dead letter = received); a schema-valid event never
ends as ``processing_error`` (that would be a bug); every output meets its schema; every
state survives the changelog round trip.

Events come from the input schemas themselves (hypothesis-jsonschema), then get their
customer, ids and timestamps drawn from small pools and extreme ranges so that sequences
for one customer collide: an order before its cart, a cancel of an unknown order, one
event id with two bodies, consent toggled back and forth, dates near 1970 and 9999.

Examples per test: ``STREAMCRM_FUZZ_EXAMPLES`` (default 60, for CI; try 5000 for a long run).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import orjson
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from streamcrm.contract import TOPIC_KIND_OF_TYPE, load_schema, validator
from streamcrm.events import MAX_TS, format_ts
from streamcrm.ingest import BatchResult, Processor, Record
from streamcrm.policies.abandoned_cart import AbandonConfig, Stage
from streamcrm.policies.contact import ContactConfig
from streamcrm.state import CustomerState

TOPICS = {"b": "browse", "c": "cart", "o": "order", "s": "service"}
TOPIC_OF_KIND = {kind: topic for topic, kind in TOPICS.items()}
EXAMPLES = int(os.environ.get("STREAMCRM_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    # No "explain" phase: re-running a found failure through the schema strategies to
    # explain it took over 10 minutes once.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NOW = 1_796_000_000.0
DAY = 86_400.0


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    """Inline ``common.schema.json`` references, so hypothesis-jsonschema sees one document."""
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _resolve(v, defs) for k, v in node.items() if k not in {"$schema", "$id", "$ref"}}
    ref = node.get("$ref")
    if isinstance(ref, str):
        out.pop("description", None)
        out = {**_resolve(defs[ref.rsplit("/", 1)[-1]], defs), **out}
    return out


@cache
def _event_strategy(event_type: str) -> st.SearchStrategy[dict[str, Any]]:
    return from_schema(_event_schema(event_type))  # canonicalising a schema is slow: once


def _event_schema(event_type: str) -> dict[str, Any]:
    defs = dict(load_schema("common")["$defs"])
    # Timestamps are drawn below (extremes included); the generator only needs a placeholder.
    defs["timestamp"] = {"const": "2026-11-01T00:00:00Z"}
    resolved: dict[str, Any] = _resolve(load_schema(event_type), defs)
    # Merge the envelope in by hand: hypothesis-jsonschema meets allOf by filtering.
    for part in resolved.pop("allOf", ()):
        resolved["properties"] = {**part.get("properties", {}), **resolved["properties"]}
        resolved["required"] = sorted({*part.get("required", ()), *resolved.get("required", ())})
    # Small enough that thirty events fit Hypothesis's budget: the 500-line cart and
    # unknown extra fields are drawn separately (tests/unit/test_hostile_input.py, below).
    _close(resolved)
    if "lines" in resolved["properties"]:
        resolved["properties"]["lines"]["maxItems"] = 8
    return resolved


def _close(node: Any) -> None:
    """No generated extra fields in any object (they are drawn separately, JSON-safe)."""
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close(value)
    elif isinstance(node, list):
        for value in node:
            _close(value)


def _timestamps() -> st.SearchStrategy[str]:
    near = st.floats(NOW - 400 * DAY, NOW + 2 * DAY).map(format_ts)
    extreme = st.floats(-1e11, MAX_TS + 1e9).map(format_ts)
    offsets = st.sampled_from(["Z", "+01:00", "-01:00", "+14:00", "-12:00"])
    fixed = st.sampled_from(
        ["9999-12-31T23:00:00", "0001-01-01T00:00:00", "1970-01-01T00:00:00", "2026-11-30T10:00:00"]
    )
    return st.one_of(near, near, extreme, st.builds(lambda t, o: t + o, fixed, offsets))


def _pool(prefix: str) -> st.SearchStrategy[str]:
    return st.integers(0, 3).map(lambda i: f"{prefix}{i}")


@st.composite
def events(draw: st.DrawFn, customers: st.SearchStrategy[str] | None = None) -> dict[str, Any]:
    event_type = draw(st.sampled_from(sorted(TOPIC_KIND_OF_TYPE)))
    body: dict[str, Any] = dict(draw(_event_strategy(event_type)))
    body["customer_id"] = draw(_pool("c") if customers is None else customers)
    body["event_id"] = draw(_pool("e"))  # small pool: the same id with different bodies
    body["ts"] = draw(_timestamps())
    for name, prefix in (("cart_id", "k"), ("order_id", "o")):
        if name in body:
            body[name] = draw(_pool(prefix))
    if "sku" in body:
        body["sku"] = draw(_pool("s"))
    extra = st.dictionaries(st.text(max_size=8).map(lambda k: f"x_{k}"), _JSON, max_size=2)
    return {**draw(extra), **body}


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False)
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


def _record(body: dict[str, Any], offset: int) -> Record:
    kind = TOPIC_KIND_OF_TYPE[body["type"]]
    key = body["customer_id"].encode()
    return Record(TOPIC_OF_KIND[kind], offset % 4, offset, key, orjson.dumps(body))


def _processor(clock: str) -> Processor:
    # Short stages, so deadlines fall due inside the fuzzed time ranges.
    abandon = AbandonConfig(
        abandon_after=60.0,
        stages=(Stage("reminder", 120.0, False), Stage("coupon", 600.0, True)),
    )
    contact = ContactConfig(holdout_share=0.25)
    return Processor(
        TOPICS, abandon=abandon, contact=contact, clock=clock, reorder=clock == "event"
    )


def _check(
    result: BatchResult, received: int, table: dict[str, CustomerState], buffered: int = 0
) -> None:
    """``buffered``: how many more events the event clock's reorder buffer holds after it."""
    assert sum(result.received.values()) == received
    accounted = sum(result.applied.values()) + result.duplicates + len(result.dead_letters)
    assert accounted + buffered == received
    assert result.dead_by_reason["processing_error"] == 0, result.dead_letters
    assert not result.timer_errors
    for event_type, _, body in result.outputs():
        validator(event_type).validate(body)
    for cid in result.erasures:  # written before the batch's states, as the worker does
        table.pop(cid, None)
    for cid, (_, state) in result.states.items():
        assert CustomerState.from_dict(orjson.loads(orjson.dumps(state))) == state
        table[cid] = state


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from(sorted(TOPICS)),
            st.none() | st.binary(max_size=300),
            st.none() | st.binary(max_size=20),
        ),
        max_size=20,
    )
)
def test_arbitrary_bytes_never_raise(records: list[tuple[str, bytes | None, bytes | None]]) -> None:
    table: dict[str, CustomerState] = {}
    batch = [Record(t, 0, i, key, value) for i, (t, value, key) in enumerate(records)]
    result = _processor("wall").process(batch, table.get, NOW)
    _check(result, len(batch), table)


@FUZZ
@given(st.lists(events(), min_size=1, max_size=30), st.sampled_from(["wall", "event"]))
def test_schema_valid_events_are_all_accounted_for(bodies: list[dict[str, Any]], clock: str) -> None:
    processor, table = _processor(clock), {}
    before = processor.buffered()
    result = processor.process([_record(b, i) for i, b in enumerate(bodies)], table.get, NOW)
    _check(result, len(bodies), table, processor.buffered() - before)


@FUZZ
@given(
    st.lists(st.lists(events(st.just("c1")), max_size=8), min_size=1, max_size=6),
    st.lists(st.floats(NOW - 400 * DAY, NOW + 30 * DAY), min_size=6, max_size=6),
    st.sampled_from(["wall", "event"]),
)
def test_one_customer_any_sequence(
    batches: list[list[dict[str, Any]]], nows: list[float], clock: str
) -> None:
    """Batches for one customer in any order, with sweeps at any times in between."""
    processor, table = _processor(clock), {}
    offset = 0
    for batch, now in zip(batches, nows, strict=False):
        records = [_record(b, offset + i) for i, b in enumerate(batch)]
        offset += len(records)
        before = processor.buffered()
        result = processor.process(records, table.get, now)
        _check(result, len(records), table, processor.buffered() - before)
        if clock == "wall":  # the worker's timer sweep, some time later
            _check(processor.sweep(table.get, now + DAY), 0, table)
    assert set(table) <= {"c1"}
