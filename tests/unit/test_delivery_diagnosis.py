"""The delivery tests' diagnosis names each way a customer can end up short of events."""

from __future__ import annotations

from streamcrm.state import CustomerState
from tests.integration.delivery_diagnosis import Sent, explain


def _state(ids: list[str], offset: int) -> CustomerState:
    return CustomerState(
        "c1", 0.0, 0.0, seen_event_ids=tuple(ids), events_applied=len(ids),
        offsets=(("cart", 2, offset),),
    )  # fmt: skip


SENT = [Sent(f"e{i}", "c1", "cart", 2, 100 + i) for i in range(4)]


def test_a_complete_history_has_no_finding() -> None:
    history = [(0, _state(["e0", "e1"], 101)), (5, _state(["e0", "e1", "e2", "e3"], 103))]
    assert explain("c1", history, SENT) == []


def test_a_state_written_on_a_stale_base_is_named_and_its_lost_events_too() -> None:
    history = [
        (0, _state(["e0", "e1"], 101)),
        (5, _state(["e0", "e1", "e2"], 102)),
        (9, _state(["e0", "e1", "e3"], 103)),  # built on the state at offset 0
    ]
    findings = explain("c1", history, SENT)
    assert findings[0].startswith("set back at changelog offset 9")
    assert findings[1] == "cart[2]@102: applied, then lost (a later state was set back)"


def test_an_event_passed_by_offset_is_told_from_one_never_read() -> None:
    history = [(0, _state(["e0", "e2"], 102))]
    findings = explain("c1", history, SENT, committed={("cart", 2): 103})
    assert findings[0].startswith("cart[2]@101: passed by offset (state at changelog offset 0")
    assert findings[0].endswith("committed 103; written at 0.000)")
    assert findings[1] == "cart[2]@103: never read (no state passed its offset, committed 103)"
