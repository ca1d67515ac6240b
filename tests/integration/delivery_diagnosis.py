"""Why a customer's final state lacks events: read from the customers changelog. Pure.

A delivery test that finds a customer short of events says only how many. This names
the mechanism, from the changelog (every state written, in order: one customer lives on
one partition) and the input position of every event:

- ``set back``: a state written on an older base than the state before it (its count
  went down, or its window does not continue the previous one): a stale table entry
  (e.g. a recovery catch-up applied late) overwrote a newer one;
- ``applied, then lost``: an event some state had applied that the final state has not
  (the state that applied it was set back);
- ``passed by offset``: never applied, yet a later state records a position on the
  event's input partition at or past it: it was dropped as a replay (``state.replayed``)
  or the records of a partition were applied out of offset order;
- ``never read``: never applied and no state passed it: not delivered, or committed past.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from streamcrm.state import CustomerState
from streamcrm.verify.figures import Lineage


@dataclass(frozen=True, slots=True)
class Sent:
    """One published event and where the broker put it."""

    event_id: str
    customer_id: str
    topic: str
    partition: int
    offset: int


def _continues(before: CustomerState, after: CustomerState) -> bool:
    """Could ``after`` have been derived from ``before`` (by applying events)?"""
    grown = after.events_applied - before.events_applied
    if grown < 0:
        return False
    if grown == 0:
        return after.seen_event_ids == before.seen_event_ids
    window = len(after.seen_event_ids)
    if not before.seen_event_ids or grown >= window:
        return True  # the whole window is new: nothing left to compare
    return after.seen_event_ids[: window - grown] == before.seen_event_ids[-(window - grown) :]


def explain(
    customer_id: str,
    history: Sequence[tuple[int, CustomerState]],
    sent: Iterable[Sent],
    committed: Mapping[tuple[str, int], int] | None = None,
) -> list[str]:
    """Findings (one line each) for one customer: ``history`` is (changelog offset, state)
    of each of its changelog records in order, ``sent`` every event published."""
    lines: list[str] = []
    mine = [s for s in sent if s.customer_id == customer_id]
    lineage = Lineage()
    ever: set[str] = set()
    for i, (offset, state) in enumerate(history):
        lineage.step(state)
        ever.update(state.seen_event_ids)
        if i and not _continues(history[i - 1][1], state):
            lines.append(
                f"set back at changelog offset {offset}: events_applied "
                f"{history[i - 1][1].events_applied} -> {state.events_applied}, window not "
                f"continued (written on a stale base)"
            )
    final = set(lineage.ids)
    for s in mine:
        if s.event_id in final:
            continue
        where = f"{s.topic}[{s.partition}]@{s.offset}"
        if s.event_id in ever:
            lines.append(f"{where}: applied, then lost (a later state was set back)")
            continue
        passed = next(
            (
                (offset, o, state.updated_at)
                for offset, state in history
                for t, p, o in state.offsets
                if t == s.topic and p == s.partition and o >= s.offset
            ),
            None,
        )
        done = "" if committed is None else f", committed {committed.get((s.topic, s.partition))}"
        if passed is not None:
            lines.append(
                f"{where}: passed by offset (state at changelog offset {passed[0]} records "
                f"{passed[1]} on that partition without it: dropped as a replay{done}; "
                f"written at {passed[2]:.3f})"
            )
        else:
            lines.append(f"{where}: never read (no state passed its offset{done})")
    if not lineage.complete:
        lines.append("lineage incomplete (a batch applied more events than the window)")
    return lines
