"""Every decision about one customer, composed from the registry.

:data:`REGISTRY` is the one list of decisions (each a module implementing
:class:`streamcrm.protocol.Decision`), in dependency order: a decision sees the state
left by those before it, and the events they emitted that it ``FOLLOWS``. Three entry
points, all taking time as an argument:

- :func:`after_event`: what an applied event makes each decision do;
- :func:`next_due`: the customer's next deadline, the minimum over the registry;
- :func:`fire_due`: fire every deadline due by ``now``, in time order; at each, the
  decision whose deadline it is (the first in the registry on a tie).

Adding a decision: its module, its schemas, one line here, its tests.
"""

from __future__ import annotations

from typing import Any

from streamcrm.crm_config import CrmConfig, Learners
from streamcrm.decisions import (
    abandoned_cart,
    churn_labels,
    complaint_sla,
    coupon_abuse,
    flash_sale,
    offers,
    profile,
    winback,
)
from streamcrm.decisions.winback import winback_offer_id
from streamcrm.events import Event
from streamcrm.protocol import Context, Decision, Emitted, Step, on_emitted_of
from streamcrm.state import CustomerState

REGISTRY: tuple[Decision, ...] = (
    abandoned_cart, churn_labels, offers, profile, winback, complaint_sla, coupon_abuse,
    flash_sale,
)  # fmt: skip

__all__ = [
    "REGISTRY", "CrmConfig", "Learners", "after_event", "fire_due", "next_due",
    "winback_offer_id",
]  # fmt: skip


class _Fold:
    """Steps of one customer, folded into one (state last, the rest in order)."""

    __slots__ = ("audit", "emitted", "evaluations", "outcomes", "state")

    def __init__(self, state: CustomerState) -> None:
        self.state = state
        self.emitted: list[Emitted] = []
        self.outcomes: list[str] = []
        self.audit: list[dict[str, Any]] = []
        self.evaluations: list[list[str]] = []

    def take(self, step: Step) -> None:
        self.state = step.state
        if step.emitted:
            self.emitted += step.emitted
        if step.outcomes:
            self.outcomes += step.outcomes
        if step.audit:
            self.audit += step.audit
        if step.evaluations:
            self.evaluations += step.evaluations

    def follow(self, after: int, seen: int, ctx: Context[Learners]) -> None:
        """Hand the events emitted since ``seen`` to the decisions after ``after`` that
        follow their type (and so on, for what those emit)."""
        while seen < len(self.emitted):
            emitted = self.emitted[seen]
            seen += 1
            for decision in REGISTRY[after + 1 :]:
                if emitted.type in decision.FOLLOWS:
                    self.take(on_emitted_of(decision)(self.state, emitted, ctx))

    def step(self) -> Step:
        return Step(
            self.state, tuple(self.emitted), tuple(self.outcomes), tuple(self.audit),
            tuple(self.evaluations),
        )  # fmt: skip


def next_due(state: CustomerState, config: CrmConfig) -> float | None:
    due = _next(state, config)
    return None if due is None else due[0]


def _next(state: CustomerState, config: CrmConfig) -> tuple[float, int] | None:
    """The earliest deadline and the index of its decision (the first on a tie)."""
    best: tuple[float, int] | None = None
    for i, decision in enumerate(REGISTRY):
        due = decision.due(state, config)
        if due is not None and (best is None or due < best[0]):
            best = (due, i)
    return best


def after_event(
    before: CustomerState | None,
    after: CustomerState,
    event: Event,
    config: CrmConfig,
    learners: Learners,
) -> Step:
    """Every decision's reaction to an applied event (``before``: the state it found)."""
    ctx = Context(config, learners, before)
    fold = _Fold(after)
    for i, decision in enumerate(REGISTRY):
        seen = len(fold.emitted)
        fold.take(decision.on_event(fold.state, event, ctx))
        if len(fold.emitted) > seen:
            fold.follow(i, seen, ctx)
    return fold.step()


def fire_due(state: CustomerState, now: float, config: CrmConfig, learners: Learners) -> Step:
    """Fire every deadline due at or before ``now``, earliest first."""
    ctx = Context(config, learners)
    fold = _Fold(state)
    due = _next(state, config)
    while due is not None and due[0] <= now:
        started_as = fold.state
        seen = len(fold.emitted)
        fold.take(REGISTRY[due[1]].on_due(fold.state, due[0], ctx))
        fold.follow(due[1], seen, ctx)
        following = _next(fold.state, config)
        if following is not None and following[0] == due[0] and fold.state == started_as:
            break  # nothing could move: stop, never spin
        due = following
    return fold.step()
