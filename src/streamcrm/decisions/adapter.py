"""Plugging a pure decision of the sub-state shape into the registry.

A capability written as a standalone pure module over its own slice of state,

    on_event(sub_state, event, cfg) -> (sub_state, emitted, outcomes)
    due(sub_state, cfg) -> float | None
    on_due(sub_state, now, cfg) -> (sub_state, emitted, outcomes)

(``emitted``: event bodies, each with its schema's ``type``; ``OUTCOMES`` and ``EMITS``
declared in the module) joins :data:`streamcrm.decisions.REGISTRY` as
``SubState(module, get=..., put=..., config=...)``: ``get``/``put`` read and write its
slice of :class:`~streamcrm.state.CustomerState`, ``config`` picks its section of
:class:`~streamcrm.crm_config.CrmConfig`. Pure if the module is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from streamcrm.crm_config import CrmConfig
from streamcrm.events import Event
from streamcrm.protocol import Context, Emitted, Step
from streamcrm.state import CustomerState

S = TypeVar("S")
Result = tuple[Any, Iterable[dict[str, Any]], Iterable[str]]


class SubState(Generic[S]):
    """A :class:`~streamcrm.protocol.Decision` made of a pure sub-state module."""

    FOLLOWS: frozenset[str] = frozenset()

    def __init__(
        self,
        module: Any,
        *,
        get: Callable[[CustomerState], S],
        put: Callable[[CustomerState, S], CustomerState],
        config: Callable[[CrmConfig], Any],
    ) -> None:
        self.module = module
        self.NAME: str = module.NAME
        self.OUTCOMES: frozenset[str] = frozenset(module.OUTCOMES)
        self.EMITS: frozenset[str] = frozenset(module.EMITS)
        self._get, self._put, self._config = get, put, config

    def on_event(self, state: CustomerState, event: Event, ctx: Context) -> Step:
        result = self.module.on_event(self._get(state), event, self._config(ctx.config))
        return self._step(state, result, event.ts)

    def due(self, state: CustomerState, config: CrmConfig) -> float | None:
        due: float | None = self.module.due(self._get(state), self._config(config))
        return due

    def on_due(self, state: CustomerState, now: float, ctx: Context) -> Step:
        result = self.module.on_due(self._get(state), now, self._config(ctx.config))
        return self._step(state, result, now)

    def _step(self, state: CustomerState, result: Result, at: float) -> Step:
        sub, emitted, outcomes = result
        events = tuple(Emitted(body["type"], body, at) for body in emitted)
        undeclared = {e.type for e in events} - self.EMITS
        if undeclared:
            msg = f"{self.NAME} emitted undeclared event types {sorted(undeclared)}"
            raise ValueError(msg)
        return Step(self._put(state, sub), emitted=events, outcomes=tuple(outcomes))
