"""Complaint SLAs as a decision: first reply within 24 h, resolution within 72 h.

The rules are :mod:`streamcrm.policies.complaint_sla`; this adapts them to the protocol
and keeps their sub-state in ``CustomerState.complaints``. ``sla_breached`` goes to the
service desk's topic (``TOPIC_OF``). While a complaint is open the contact policy holds
marketing back (:func:`streamcrm.policies.contact.hold`). Reply and resolution times are
counted into fixed buckets (outcomes ``complaint_<sla>_le_<bound>``), which ``/metrics``
shows as histograms: outcomes are the one channel from a decision to the shell. Pure: no
learner is touched.
"""

from __future__ import annotations

from streamcrm.crm_config import CrmConfig
from streamcrm.events import Event
from streamcrm.evolve import evolve
from streamcrm.policies import complaint_sla as policy
from streamcrm.protocol import Context, Emitted, Step
from streamcrm.state import CustomerState

NAME = "complaint_sla"
# Upper bounds (hours) of the answer-time buckets; the last is open.
BUCKETS_H: tuple[float | None, ...] = (1.0, 4.0, 24.0, 72.0, 168.0, None)
SLAS = (policy.FIRST_REPLY, policy.RESOLUTION)


def bucket_name(sla: str, bound_h: float | None) -> str:
    """The outcome counting answers within ``bound_h`` hours (None: the open bucket).

    >>> bucket_name("first_reply", 4.0), bucket_name("resolution", None)
    ('complaint_first_reply_le_4h', 'complaint_resolution_le_inf')
    """
    return f"complaint_{sla}_le_{'inf' if bound_h is None else f'{bound_h:g}h'}"


OUTCOMES = frozenset({*policy.OUTCOMES, *(bucket_name(sla, b) for sla in SLAS for b in BUCKETS_H)})
EMITS = frozenset({"sla_breached"})
FOLLOWS: frozenset[str] = frozenset()


def on_event(state: CustomerState, event: Event, ctx: Context) -> Step:
    if event.type not in policy.INPUT_TYPES:
        return Step(state)
    times = policy.answer_times(state.complaints, event)
    complaints, bodies, outcomes = policy.on_event(state.complaints, event, ctx.config.sla)
    buckets = tuple(bucket_name(sla, _bucket(seconds)) for sla, seconds in times)
    return Step(
        evolve(state, complaints=complaints),
        emitted=tuple(Emitted("sla_breached", body, event.ts) for body in bodies),
        outcomes=outcomes + buckets,
    )


def _bucket(seconds: float) -> float | None:
    return next((b for b in BUCKETS_H if b is not None and seconds <= b * 3600.0), None)


def due(state: CustomerState, config: CrmConfig) -> float | None:
    return policy.due(state.complaints, config.sla)


def on_due(state: CustomerState, now: float, ctx: Context) -> Step:
    complaints, bodies, outcomes = policy.on_due(state.complaints, now, ctx.config.sla)
    return Step(
        evolve(state, complaints=complaints),
        emitted=tuple(Emitted("sla_breached", body, now) for body in bodies),
        outcomes=outcomes,
    )
