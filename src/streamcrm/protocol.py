"""The decision protocol: what every decision about one customer implements.

In the shape of Bytewax's ``StatefulLogic`` (``on_item``, ``notify_at``, ``on_notify``)
and Quix's stateful ``apply``. A decision is a module (see :mod:`streamcrm.decisions`)
with:

- ``NAME``; ``OUTCOMES``, every outcome name it may count (read back by stats, metrics,
  replays and the demo through :mod:`streamcrm.outcomes`); ``EMITS``, the types of the
  events it may emit (each routed to its topic by :data:`TOPIC_OF`); ``FOLLOWS``, the
  types of events emitted by decisions before it in the registry that it reacts to;
- ``on_event(state, event, ctx) -> Step``: an input event was applied (``ctx.before`` is
  the state before it);
- ``on_emitted(state, emitted, ctx) -> Step``, only if ``FOLLOWS`` names a type: an
  earlier decision emitted an event of that type (win-back reacts to a customer becoming
  at risk this way); without it the state stays as it is (:func:`on_emitted_of`);
- ``due(state, config) -> float | None``: the decision's next deadline, derived from the
  state alone (so it survives restarts with the state itself);
- ``on_due(state, now, ctx) -> Step``: its deadline ``now`` has come.

Each returns a :class:`Step`: the new state, the events it emits, the outcome names it
counts, its audit records. Decisions never read the clock and never do I/O. The one
side effect they may have is teaching the population learners in ``ctx.learners``
(River's ``learn_one`` is in place); each function that does says so. A decision reaches
only the learners its signature names, ``ctx: Context[View]`` with a view of
:mod:`streamcrm.decisions.learner_view`; a bare ``Context`` reaches none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol

from typing_extensions import TypeVar  # a TypeVar default: typing has it from 3.13

from streamcrm.crm_config import CrmConfig, Learners
from streamcrm.events import Event
from streamcrm.evolve import fast_init
from streamcrm.state import CustomerState

# What of the learners a decision may reach. Covariant, so a Context over the full
# Learners is one over any view Learners satisfies; nothing (object) unless stated.
L_co = TypeVar("L_co", covariant=True, default=object)

# Emitted event type -> the ``Topics`` attribute naming its topic (config.Topics). Stated
# once: the shell sends by this, the batch result groups by it. In the shell's send order.
TOPIC_OF: dict[str, str] = {
    "dead_letter": "deadletter",
    "coupon_issued": "coupons",
    "customer_profile_updated": "profiles",
    "next_best_offer": "offers",
    "offer_reward": "offers",  # joined to its offer by offer_id (off-policy evaluation)
    "customer_erased": "erasures",
    "sla_breached": "service_out",
    "anomaly_flagged": "service_out",
    "flash_sale_notification": "campaigns_out",
}


@fast_init  # built several times per event
@dataclass(frozen=True, slots=True)
class Emitted:
    """An output event: ``type`` is its schema's (and picks its topic), ``at`` the decision
    time it was made at (epoch seconds; the body holds it as text)."""

    type: str
    body: dict[str, Any]
    at: float


@fast_init  # built several times per event
@dataclass(frozen=True, slots=True)
class Step:
    """What one decision did: the new state and what it emits, counts and records.

    ``audit``: decision records with their inputs (the decision log); ``evaluations``:
    per evaluated offer, the names of its hits (for customer-clustered intervals)."""

    state: CustomerState
    emitted: tuple[Emitted, ...] = ()
    outcomes: tuple[str, ...] = ()
    audit: tuple[dict[str, Any], ...] = ()
    evaluations: tuple[list[str], ...] = ()


@fast_init  # built several times per event
@dataclass(frozen=True, slots=True)
class Context(Generic[L_co]):
    """What a decision may consult besides the customer's state: ``learners`` is the
    shell's :class:`~streamcrm.crm_config.Learners`, seen through the decision's view."""

    config: CrmConfig
    learners: L_co
    before: CustomerState | None = None  # on_event: the state before the event was applied


class Decision(Protocol):
    """One decision (a module implements it; :data:`streamcrm.decisions.REGISTRY`)."""

    NAME: str
    OUTCOMES: frozenset[str]
    EMITS: frozenset[str]
    FOLLOWS: frozenset[str]

    # Called with the full Learners: a module's narrower view must be one Learners satisfies.
    def on_event(self, state: CustomerState, event: Event, ctx: Context[Learners]) -> Step: ...

    def due(self, state: CustomerState, config: CrmConfig) -> float | None: ...

    def on_due(self, state: CustomerState, now: float, ctx: Context[Learners]) -> Step: ...


OnEmitted = Callable[[CustomerState, Emitted, Context[Learners]], Step]


def ignore_emitted(state: CustomerState, emitted: Emitted, ctx: Context) -> Step:
    """The default ``on_emitted``: a decision that follows nothing keeps its state."""
    return Step(state)


def on_emitted_of(decision: Decision) -> OnEmitted:
    """The decision's ``on_emitted``, or :func:`ignore_emitted` if it defines none."""
    fn: OnEmitted | None = getattr(decision, "on_emitted", None)
    return ignore_emitted if fn is None else fn
