"""Complaint SLAs on a simulated clock: deadlines, breaches, suppression, bounds."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamcrm.contract import schema_dir, validator
from streamcrm.events import Event, InvalidEvent, decode
from streamcrm.policies.complaint_sla import (
    OUTCOMES,
    ComplaintState,
    SlaConfig,
    answer_times,
    churn_features,
    due,
    on_due,
    on_event,
    suppresses_marketing,
)

H = 3600.0
CFG = SlaConfig()


def ev(kind: str, ts: float, cid: str = "T1", customer: str = "c1") -> Event:
    return Event(f"{kind}-{cid}-{ts}", kind, customer, ts, "email", None, {"complaint_id": cid})


def run(steps: list[tuple[str, float, str]], cfg: SlaConfig = CFG) -> tuple[Any, list[Any], Counter[str]]:
    """Feed events in order, firing every deadline that falls due before each one."""
    state: ComplaintState | None = None
    emitted: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    for kind, ts, cid in steps:
        while (at := due(state, cfg)) is not None and at <= ts:
            state, out, outcomes = on_due(state, at, cfg)
            emitted += out
            counts.update(outcomes)
        if kind == "tick":
            continue
        state, out, outcomes = on_event(state, ev(kind, ts, cid), cfg)
        emitted += out
        counts.update(outcomes)
    return state, emitted, counts


def test_reply_and_resolution_in_time_breach_nothing() -> None:
    state, emitted, counts = run(
        [("complaint_opened", 0, "T1"), ("complaint_replied", 23 * H, "T1"),
         ("complaint_resolved", 71 * H, "T1"), ("tick", 500 * H, "")]
    )  # fmt: skip
    assert emitted == [] and due(state, CFG) is None
    assert counts == Counter(complaint_opened=1, complaint_replied=1, complaint_resolved=1)


def test_missed_deadlines_breach_at_their_due_time_then_close_late() -> None:
    _, emitted, counts = run(
        [("complaint_opened", 0, "T1"), ("tick", 30 * H, ""), ("complaint_replied", 30 * H, "T1"),
         ("complaint_resolved", 80 * H, "T1")]
    )  # fmt: skip
    got = [(e["sla"], e["phase"], e["ts"], e["late_by_s"]) for e in emitted]
    assert got == [
        ("first_reply", "breached", "1970-01-02T00:00:00.000Z", 0.0),
        ("first_reply", "closed_late", "1970-01-02T06:00:00.000Z", 6 * H),
        ("resolution", "breached", "1970-01-04T00:00:00.000Z", 0.0),
        ("resolution", "closed_late", "1970-01-04T08:00:00.000Z", 8 * H),
    ]
    for body in emitted:
        validator("sla_breached").validate(body)
    assert len({e["event_id"] for e in emitted}) == 4
    assert counts["sla_breached_first_reply"] == counts["sla_breached_resolution"] == 1
    assert set(counts) <= set(OUTCOMES)


def test_a_late_sweep_reports_its_lag_but_stamps_the_due_time() -> None:
    state, _, _ = on_event(None, ev("complaint_opened", 0.0), CFG)
    _, out, _ = on_due(state, 24 * H + 90, CFG)
    assert out[0]["ts"] == "1970-01-02T00:00:00.000Z" and out[0]["late_by_s"] == 90.0
    early, none, _ = on_due(state, 24 * H - 1, CFG)
    assert none == () and early == state


def test_resolution_without_reply_answers_the_customer_too() -> None:
    state, emitted, _ = run([("complaint_opened", 0, "T1"), ("complaint_resolved", 30 * H, "T1")])
    assert [(e["sla"], e["phase"]) for e in emitted] == [
        ("first_reply", "breached"), ("first_reply", "closed_late")
    ]  # fmt: skip
    assert state is not None and state.open == () and state.closed == ("T1",)


def test_configurable_deadlines() -> None:
    cfg = SlaConfig(first_reply_s=H, resolution_s=2 * H)
    state, _, _ = on_event(None, ev("complaint_opened", 0.0), cfg)
    assert due(state, cfg) == H
    with pytest.raises(ValueError, match="first_reply_s <= resolution_s"):
        SlaConfig(first_reply_s=3 * H, resolution_s=H)


def test_duplicates_unknowns_and_the_open_cap() -> None:
    cfg = SlaConfig(max_open=3, closed_memory=2)
    steps = [("complaint_opened", float(i), f"T{i}") for i in range(5)]
    late = [("complaint_opened", 9.0, "T4"), ("complaint_replied", 9.0, "T0"), ("complaint_replied", 9.0, "T9")]
    state, _, counts = run([*steps, *late], cfg)
    assert state is not None and [c.complaint_id for c in state.open] == ["T2", "T3", "T4"]
    assert state.closed == ("T0", "T1")  # dropped ones are remembered like closed ones
    assert counts["complaint_dropped_over_cap"] == 2
    assert counts["complaint_duplicate"] == 2 and counts["complaint_unknown"] == 1
    state, _, counts = run(
        [*steps, *[("complaint_resolved", 10.0 + i, f"T{i}") for i in (2, 3, 4)],
         ("complaint_resolved", 20.0, "T4"), ("complaint_opened", 21.0, "T2")], cfg
    )  # fmt: skip
    assert state is not None and state.closed == ("T3", "T4")
    assert counts["complaint_duplicate"] == 1  # T4 again; T2 is forgotten, so it reopens
    assert [c.complaint_id for c in state.open] == ["T2"]


def test_suppression_and_churn_features_follow_open_complaints() -> None:
    state, _, _ = run([("complaint_opened", 0, "T1"), ("complaint_opened", 1, "T2"), ("tick", 25 * H, "")])
    assert suppresses_marketing(state, 25 * H)
    assert churn_features(state) == {"complaints_open": 2, "complaints_breached": 2}
    assert not suppresses_marketing(state, 31 * 24 * H)  # a forgotten ticket stops muting
    state, _, _ = on_event(state, ev("complaint_resolved", 26 * H, "T1"), CFG)
    state, _, _ = on_event(state, ev("complaint_resolved", 26 * H, "T2"), CFG)
    assert not suppresses_marketing(state, 26 * H)
    assert churn_features(state) == {"complaints_open": 0, "complaints_breached": 0}


def test_answer_times_count_each_sla_once() -> None:
    state, _, _ = on_event(None, ev("complaint_opened", 0.0), CFG)
    replied = ev("complaint_replied", 2 * H)
    assert answer_times(state, replied) == (("first_reply", 2 * H),)
    state, _, _ = on_event(state, replied, CFG)
    assert answer_times(state, replied) == ()  # a second reply is not a first reply
    assert answer_times(state, ev("complaint_resolved", 5 * H)) == (("resolution", 5 * H),)
    assert answer_times(state, ev("complaint_resolved", 5 * H, "T9")) == ()


def test_other_events_pass_through() -> None:
    other = Event("e1", "product_viewed", "c1", 5.0, "web", None, {"sku": "s"})
    assert on_event(None, other, CFG) == (None, (), ())


def test_service_inputs_decode_on_the_service_topic_only() -> None:
    for kind in ("complaint_opened", "complaint_replied", "complaint_resolved", "customer_flag_cleared"):
        raw = (schema_dir() / "examples" / f"{kind}.json").read_bytes()
        assert decode(raw, topic_kind="service", key=b"c000042").type == kind
        with pytest.raises(InvalidEvent, match="wrong_topic"):
            decode(raw, topic_kind="browse", key=b"c000042")
    bad = orjson.loads((schema_dir() / "examples" / "complaint_opened.json").read_bytes())
    del bad["complaint_id"]
    with pytest.raises(InvalidEvent, match="schema_violation"):
        decode(orjson.dumps(bad), topic_kind="service", key=b"c000042")


_STEP = st.tuples(
    st.sampled_from(["complaint_opened", "complaint_replied", "complaint_resolved", "tick"]),
    st.floats(1, 10 * H),  # distinct event times, as real events have
    st.sampled_from([f"T{i}" for i in range(6)]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_STEP, max_size=40), st.integers(1, 4))
def test_any_sequence_keeps_bounds_and_emits_each_breach_once(steps: list[Any], cap: int) -> None:
    cfg = SlaConfig(first_reply_s=H, resolution_s=3 * H, max_open=cap, closed_memory=3)
    clock = 0.0
    timed = []
    for kind, gap, cid in steps:
        clock += gap
        timed.append((kind, clock, cid))
    state, emitted, counts = run(timed, cfg)
    ids = [e["event_id"] for e in emitted]
    assert len(ids) == len(set(ids))
    for body in emitted:
        validator("sla_breached").validate(body)
        assert body["late_by_s"] >= 0
    assert set(counts) <= set(OUTCOMES)
    if state is not None:
        assert len(state.open) <= cap and len(state.closed) <= 3
        assert ComplaintState.from_dict(orjson.loads(orjson.dumps(state.to_dict()))) == state
        pending = due(state, cfg)  # run() fired everything due up to the last event
        assert pending is None or pending > timed[-1][1]
