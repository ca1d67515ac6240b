"""Complaint SLAs: first reply within 24 h, resolution within 72 h. Pure.

A decision module in the protocol's shape (issue 15): :func:`on_event`, :func:`due` and
:func:`on_due` each return ``(state, emitted, outcomes)``. Deadlines are derived from
the state (opened_at + SLA, and which SLAs already breached), so they are as durable as
the state. While a complaint is open (breached or not) marketing to the customer is
suppressed (:func:`suppresses_marketing`); open and breached counts are churn features
(:func:`churn_features`). Wired as :mod:`streamcrm.decisions.complaint_sla`.

>>> from streamcrm.events import Event
>>> def ev(kind, ts, cid="T1"):
...     return Event("e-" + kind, kind, "c1", ts, "email", None, {"complaint_id": cid})
>>> cfg = SlaConfig()
>>> s, out, outcomes = on_event(None, ev("complaint_opened", 0.0), cfg)
>>> outcomes, due(s, cfg), suppresses_marketing(s, 10.0)
(('complaint_opened',), 86400.0, True)
>>> s, out, outcomes = on_due(s, 86400.0, cfg)
>>> out[0]["sla"], out[0]["phase"], outcomes, due(s, cfg)
('first_reply', 'breached', ('sla_breached_first_reply',), 259200.0)
>>> s, out, outcomes = on_event(s, ev("complaint_replied", 90000.0), cfg)
>>> out[0]["phase"], out[0]["late_by_s"], churn_features(s)
('closed_late', 3600.0, {'complaints_open': 1, 'complaints_breached': 1})
>>> s, out, outcomes = on_event(s, ev("complaint_resolved", 100000.0), cfg)
>>> outcomes, due(s, cfg), suppresses_marketing(s, 100001.0)
(('complaint_resolved',), None, False)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from streamcrm.events import Event, format_ts

HOUR = 3600.0
FIRST_REPLY = "first_reply"
RESOLUTION = "resolution"
INPUT_TYPES = ("complaint_opened", "complaint_replied", "complaint_resolved")
OUTCOMES = (
    "complaint_opened",
    "complaint_replied",
    "complaint_resolved",
    "complaint_duplicate",  # opened twice, or a reply/resolution for a closed complaint
    "complaint_unknown",  # a reply/resolution for a complaint never opened (or dropped)
    "complaint_dropped_over_cap",  # the oldest open complaint forgotten to keep state bounded
    "sla_breached_first_reply",
    "sla_breached_resolution",
    "complaint_replied_late",
    "complaint_resolved_late",
)


@dataclass(frozen=True, slots=True)
class SlaConfig:
    first_reply_s: float = 24 * HOUR
    resolution_s: float = 72 * HOUR
    max_open: int = 8  # open complaints kept per customer; more drops the oldest
    closed_memory: int = 16  # recently closed ids, so late duplicates are recognised
    # An open complaint stops muting marketing after this long: a ticket the desk forgot
    # to close must not silence a customer forever (it still counts as a churn feature).
    suppress_max_s: float = 30 * 24 * HOUR

    def __post_init__(self) -> None:
        if not 0 < self.first_reply_s <= self.resolution_s:
            msg = f"need 0 < first_reply_s <= resolution_s (got {self.first_reply_s}, {self.resolution_s})"
            raise ValueError(msg)
        if self.max_open < 1 or self.closed_memory < 0:
            msg = f"need max_open >= 1 and closed_memory >= 0 (got {self.max_open}, {self.closed_memory})"
            raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class Complaint:
    complaint_id: str
    opened_at: float
    replied_at: float | None = None
    reply_breached: bool = False
    resolution_breached: bool = False


@dataclass(frozen=True, slots=True)
class ComplaintState:
    """One customer's open complaints (oldest first) and recently closed ids."""

    customer_id: str
    open: tuple[Complaint, ...] = ()
    closed: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "open": [
                [c.complaint_id, c.opened_at, c.replied_at, c.reply_breached, c.resolution_breached]
                for c in self.open
            ],
            "closed": list(self.closed),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ComplaintState:
        return cls(
            data["customer_id"],
            tuple(Complaint(i, float(o), r, bool(a), bool(b)) for i, o, r, a, b in data["open"]),
            tuple(data["closed"]),
        )


Step = tuple[ComplaintState | None, tuple[dict[str, Any], ...], tuple[str, ...]]


def on_event(state: ComplaintState | None, event: Event, cfg: SlaConfig) -> Step:
    """Apply one service event; any other event type leaves the state as it is."""
    if event.type not in INPUT_TYPES:
        return state, (), ()
    cid = str(event.body["complaint_id"])
    current = state or ComplaintState(event.customer_id)
    found = next((c for c in current.open if c.complaint_id == cid), None)
    if event.type == "complaint_opened":
        if found is None and cid not in current.closed:
            return _open(current, Complaint(cid, event.ts), cfg)
        return state, (), ("complaint_duplicate",)
    if found is None or (event.type == "complaint_replied" and found.replied_at is not None):
        known = found is not None or cid in current.closed
        return state, (), ("complaint_duplicate" if known else "complaint_unknown",)
    if event.type == "complaint_replied":
        replied = replace(found, replied_at=event.ts)
        emitted, outcomes = _late(current, found, FIRST_REPLY, event.ts, cfg, "complaint_replied")
        return _put(current, replied), emitted, outcomes
    return _resolve(current, found, event.ts, cfg)


def _put(state: ComplaintState, complaint: Complaint) -> ComplaintState:
    """Replace the open complaint with the same id, keeping the order."""
    same = complaint.complaint_id
    return replace(state, open=tuple(complaint if c.complaint_id == same else c for c in state.open))


def _open(state: ComplaintState, complaint: Complaint, cfg: SlaConfig) -> Step:
    kept, closed = state.open, state.closed
    outcomes: tuple[str, ...] = ("complaint_opened",)
    if len(kept) >= cfg.max_open:  # oldest first: forget it, as a bounded state must
        over = len(kept) - cfg.max_open + 1
        closed = _remember(closed, tuple(c.complaint_id for c in kept[:over]), cfg)
        kept = kept[over:]
        outcomes += ("complaint_dropped_over_cap",)
    return replace(state, open=(*kept, complaint), closed=closed), (), outcomes


def _remember(closed: tuple[str, ...], ids: tuple[str, ...], cfg: SlaConfig) -> tuple[str, ...]:
    """Recently closed (or dropped) ids, newest last, at most ``closed_memory``."""
    memory = cfg.closed_memory
    return (*closed, *ids)[-memory:] if memory else ()


def _resolve(state: ComplaintState, found: Complaint, ts: float, cfg: SlaConfig) -> Step:
    emitted: tuple[dict[str, Any], ...] = ()
    outcomes: tuple[str, ...] = ()
    if found.replied_at is None:  # a resolution answers the customer too
        emitted, outcomes = _late(state, found, FIRST_REPLY, ts, cfg, None)
    more, named = _late(state, found, RESOLUTION, ts, cfg, "complaint_resolved")
    closed = _remember(state.closed, (found.complaint_id,), cfg)
    rest = tuple(c for c in state.open if c is not found)
    return replace(state, open=rest, closed=closed), emitted + more, outcomes + named


def _late(
    state: ComplaintState,
    c: Complaint,
    sla: str,
    ts: float,
    cfg: SlaConfig,
    outcome: str | None,
) -> tuple[tuple[dict[str, Any], ...], tuple[str, ...]]:
    """The reply/resolution at ``ts``: a ``closed_late`` event when it missed its SLA."""
    due_at = c.opened_at + (cfg.first_reply_s if sla == FIRST_REPLY else cfg.resolution_s)
    named = (outcome,) if outcome else ()
    if ts <= due_at:
        return (), named
    late = ("complaint_replied_late",) if sla == FIRST_REPLY else ("complaint_resolved_late",)
    return (_breach(state.customer_id, c, sla, "closed_late", due_at, ts, ts),), named + late


def due(state: ComplaintState | None, cfg: SlaConfig) -> float | None:
    """The earliest SLA deadline still pending, or None."""
    if state is None:
        return None
    pending = [t for c in state.open for _, t in _pending(c, cfg)]
    return min(pending) if pending else None


def _pending(c: Complaint, cfg: SlaConfig) -> list[tuple[str, float]]:
    out = []
    if c.replied_at is None and not c.reply_breached:
        out.append((FIRST_REPLY, c.opened_at + cfg.first_reply_s))
    if not c.resolution_breached:
        out.append((RESOLUTION, c.opened_at + cfg.resolution_s))
    return out


def on_due(state: ComplaintState | None, now: float, cfg: SlaConfig) -> Step:
    """Mark every deadline at or before ``now`` breached and emit its ``sla_breached``."""
    if state is None:
        return None, (), ()
    steps = [_fire(state.customer_id, c, now, cfg) for c in state.open]
    emitted = tuple(e for _, out, _ in steps for e in out)
    outcomes = tuple(o for _, _, named in steps for o in named)
    return replace(state, open=tuple(c for c, _, _ in steps)), emitted, outcomes


def _fire(
    customer_id: str, c: Complaint, now: float, cfg: SlaConfig
) -> tuple[Complaint, tuple[dict[str, Any], ...], tuple[str, ...]]:
    emitted, outcomes, updated = [], [], c
    for sla, due_at in _pending(c, cfg):
        if due_at <= now:
            emitted.append(_breach(customer_id, c, sla, "breached", due_at, due_at, now))
            outcomes.append(f"sla_breached_{sla}")
            if sla == FIRST_REPLY:
                updated = replace(updated, reply_breached=True)
            else:
                updated = replace(updated, resolution_breached=True)
    return updated, tuple(emitted), tuple(outcomes)


def _breach(
    customer_id: str, c: Complaint, sla: str, phase: str, due_at: float, ts: float, at: float
) -> dict[str, Any]:
    """``ts`` stamps the event (the due time for a breach: ids and bytes do not depend on
    when a sweep ran); ``at`` is when it was decided, for the lateness."""
    return {
        # The opening time keeps a reopened (forgotten, then opened again) complaint apart.
        "event_id": f"sla-{customer_id}-{c.complaint_id}-{int(c.opened_at)}-{sla}-{phase}"[:128],
        "type": "sla_breached",
        "customer_id": customer_id,
        "ts": format_ts(ts),
        "complaint_id": c.complaint_id,
        "sla": sla,
        "phase": phase,
        "opened_at": format_ts(c.opened_at),
        "due_at": format_ts(due_at),
        "late_by_s": round(max(0.0, at - due_at), 3),
    }


def suppresses_marketing(
    state: ComplaintState | None, now: float, cfg: SlaConfig | None = None
) -> bool:
    """Whether marketing to this customer is held back at ``now``: an open complaint
    (breached or not) opened at or before ``now`` and within ``suppress_max_s``.

    >>> s = ComplaintState("c1", (Complaint("T1", 100.0),))
    >>> suppresses_marketing(s, 50.0), suppresses_marketing(s, 200.0), suppresses_marketing(None, 0)
    (False, True, False)
    """
    if state is None:
        return False
    limit = (cfg or SlaConfig()).suppress_max_s
    return any(0.0 <= now - c.opened_at <= limit for c in state.open)


def churn_features(state: ComplaintState | None) -> dict[str, int]:
    """Open and breached complaint counts, as features for the churn model.

    >>> churn_features(None)
    {'complaints_open': 0, 'complaints_breached': 0}
    """
    open_ = state.open if state is not None else ()
    breached = sum(1 for c in open_ if c.reply_breached or c.resolution_breached)
    return {"complaints_open": len(open_), "complaints_breached": breached}


def answer_times(state: ComplaintState | None, event: Event) -> tuple[tuple[str, float], ...]:
    """Seconds from opening to the first reply and to the resolution that ``event``
    brings, for ``/metrics`` histograms; taken on the state *before* the event.

    >>> s = ComplaintState("c1", (Complaint("T1", 100.0),))
    >>> answer_times(s, Event("e", "complaint_resolved", "c1", 400.0, "email", None, {"complaint_id": "T1"}))
    (('first_reply', 300.0), ('resolution', 300.0))
    """
    if state is None or event.type not in ("complaint_replied", "complaint_resolved"):
        return ()
    cid = str(event.body["complaint_id"])
    found = next((c for c in state.open if c.complaint_id == cid), None)
    if found is None:
        return ()
    took = max(0.0, event.ts - found.opened_at)
    first = ((FIRST_REPLY, took),) if found.replied_at is None else ()
    return first + (((RESOLUTION, took),) if event.type == "complaint_resolved" else ())
