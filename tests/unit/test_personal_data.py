"""Personal data kept to what is needed: no search text in state, no customer id in the
population learners' checkpoints, none in the decision log at INFO."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamcrm.events import decode, format_ts
from streamcrm.ingest import BatchResult, Processor, Record
from streamcrm.learning import checkpoint
from streamcrm.state import CustomerState, apply
from streamcrm.synthetic import generate

KINDS = {"b": "browse", "c": "cart", "o": "order"}
TOPIC = {"browse": "b", "cart": "c", "order": "o"}


def search(query: str, category: str | None = None) -> bytes:
    body = {"event_id": "e1", "type": "search_performed", "customer_id": "c1",
            "ts": format_ts(1_796_000_000.0), "channel": "web", "query": query}  # fmt: skip
    if category is not None:
        body["category"] = category
    return orjson.dumps(body)


# Delimited so that the query can only be found in a state if the state kept it.
QUERIES = st.text(min_size=1, max_size=240).map(lambda text: f"<<{text}>>")


@settings(max_examples=100, deadline=None)
@given(QUERIES, st.none() | st.sampled_from(["shoes", "garden"]))
def test_no_search_text_is_kept_only_its_category(query: str, category: str | None) -> None:
    event = decode(search(query, category), topic_kind="browse", key=b"c1")
    state = apply(None, event, now=1_796_000_001.0).state
    stored = orjson.dumps(state).decode()
    assert query not in stored
    assert state.search_categories == (() if category is None else (category,))
    assert CustomerState.from_dict(orjson.loads(stored)) == state


def test_search_text_from_before_is_dropped_when_the_state_is_read() -> None:
    old = orjson.loads(orjson.dumps(CustomerState("c1", 0.0, 0.0)))
    old["recent_searches"] = ["my home address"]
    assert "my home address" not in orjson.dumps(CustomerState.from_dict(old)).decode()


def test_the_learners_checkpoint_holds_no_customer_id() -> None:
    synthetic = list(generate(6000, seed=11, customers=300))
    records = [Record(TOPIC[r.topic_kind], 0, i, r.key, r.value) for i, r in enumerate(synthetic)]
    processor = Processor(KINDS, clock="event")
    table: dict[str, CustomerState] = {}
    now = datetime(2026, 11, 1, tzinfo=UTC).timestamp()
    for start in range(0, len(records), 500):
        result = processor.process(records[start : start + 500], table.get, now)
        table.update({cid: state for cid, (_, state) in result.states.items()})
    learners = processor.learners
    assert learners.churn.labels + learners.ranker.labels > 0 and learners.rfm.seen > 0
    blobs = [checkpoint.dump_model(learners)]
    items = (checkpoint.dump_item(learners.candidates, sku) for sku in learners.candidates.popularity)
    blobs += [item for item in items if item is not None]
    text = b"\n".join(blobs).decode()
    customers = {r.key.decode() for r in synthetic if r.key}
    assert len(customers) > 100
    assert [c for c in customers if c in text] == []


def _audited(level: int, caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    from streamcrm.app.commit import log_batch as _log

    result = BatchResult(decisions=[{"coupon_id": "cp-1", "customer_id": "c-secret-7",
                                     "stage": "coupon", "verdict": "allowed"}])  # fmt: skip
    caplog.clear()
    with caplog.at_level(level, logger="streamcrm.decisions"):
        _log(result)
    return [r for r in caplog.records if r.name == "streamcrm.decisions"]


def test_the_decision_log_names_no_customer_at_info_and_does_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    info = _audited(logging.INFO, caplog)
    assert len(info) == 1 and "cp-1" in info[0].getMessage()
    assert "c-secret-7" not in info[0].getMessage()
    debug = _audited(logging.DEBUG, caplog)
    assert Counter(r.levelname for r in debug) == {"DEBUG": 1}
    assert "c-secret-7" in debug[0].getMessage()
