"""The decision protocol: the registry's composition, declared outcomes, emitted types."""

from __future__ import annotations

import sys
from dataclasses import replace
from types import ModuleType
from typing import Any

import orjson
import pytest

from streamcrm import decisions, outcomes
from streamcrm.crm_config import CrmConfig, Learners
from streamcrm.decisions.adapter import SubState
from streamcrm.events import Event, parse_ts
from streamcrm.ingest import Processor, Record
from streamcrm.policies.contact import ContactConfig
from streamcrm.protocol import TOPIC_OF, Context, Emitted, Step
from streamcrm.replay.runner import KINDS
from streamcrm.state import CustomerState
from streamcrm.synthetic import generate


def _counted(crm: CrmConfig, clock: str, n: int = 6000) -> set[str]:
    """Every outcome name a run over synthetic traffic counts."""
    processor = Processor(KINDS, crm=crm, clock=clock)
    table: dict[str, CustomerState] = {}
    rows = list(generate(n, seed=11, customers=150))
    counted: set[str] = set()
    for start in range(0, len(rows), 100):
        chunk = [
            Record(r.topic_kind, 0, start + i, r.key, r.value)
            for i, r in enumerate(rows[start : start + 100])
        ]
        now = max(parse_ts(orjson.loads(r.value)["ts"]) for r in rows[start : start + 100])
        batch = processor.process(chunk, table.get, now)
        for cid, (_, state) in batch.states.items():
            table[cid] = state
        counted |= set(batch.outcomes)
        assert set(batch.emitted) == set(TOPIC_OF)
    return counted


@pytest.mark.parametrize("clock", ["event", "wall"])
@pytest.mark.parametrize("holdout", [0.0, 0.5])
def test_every_counted_outcome_is_declared(clock: str, holdout: float) -> None:
    crm = CrmConfig(contact=ContactConfig(holdout_share=holdout, consent_default=holdout == 0.0))
    counted = _counted(crm, clock)
    assert counted, "the run counted nothing: the check would prove nothing"
    assert counted <= outcomes.DECLARED, sorted(counted - outcomes.DECLARED)


def test_a_misspelt_outcome_fails_loudly() -> None:
    with pytest.raises(KeyError, match="undeclared outcome 'couponned'"):
        outcomes.Tally({})["couponned"]
    with pytest.raises(KeyError, match="no declared outcome starts with"):
        outcomes.Tally({}).family("supressed_")
    with pytest.raises(KeyError, match="undeclared outcome 'suppressed_typo'"):
        outcomes.Tally({"suppressed_typo": 1}).family("suppressed_")


def test_every_emitted_type_has_a_topic_and_every_followed_type_an_earlier_emitter() -> None:
    names = [d.NAME for d in decisions.REGISTRY]
    assert len(set(names)) == len(names)
    emitted_before: set[str] = set()
    for decision in decisions.REGISTRY:
        assert set(TOPIC_OF) >= decision.EMITS, decision.NAME
        assert emitted_before >= decision.FOLLOWS, decision.NAME
        # A follower without its own on_emitted would ignore what it follows (the default).
        assert not decision.FOLLOWS or hasattr(decision, "on_emitted"), decision.NAME
        emitted_before |= decision.EMITS


def _timer_decision(due_at: float) -> ModuleType:
    """A new decision in a handful of lines: one deadline, one outcome, one event."""
    module = ModuleType("reminder_at")
    module.NAME = "reminder_at"  # type: ignore[attr-defined]
    module.OUTCOMES = frozenset({"reminder_at_fired"})  # type: ignore[attr-defined]
    module.EMITS = frozenset({"coupon_issued"})  # type: ignore[attr-defined]
    module.FOLLOWS = frozenset()  # type: ignore[attr-defined]
    module.on_event = lambda state, event, ctx: Step(state)  # type: ignore[attr-defined]

    def due(state: CustomerState, config: CrmConfig) -> float | None:
        return None if state.last_seen >= due_at else due_at

    def on_due(state: CustomerState, now: float, ctx: Context) -> Step:
        body = {"type": "coupon_issued", "at": now}
        return Step(
            replace(state, last_seen=now),
            emitted=(Emitted("coupon_issued", body, now),),
            outcomes=("reminder_at_fired",),
        )

    module.due = due  # type: ignore[attr-defined]
    module.on_due = on_due  # type: ignore[attr-defined]
    return module


def test_one_registry_line_makes_a_new_deadline_fire(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = _timer_decision(500.0)
    monkeypatch.setitem(sys.modules, "reminder_at", extra)
    monkeypatch.setattr(decisions, "REGISTRY", (*decisions.REGISTRY, extra))
    state = CustomerState("c1", 0.0, 0.0)
    crm = CrmConfig()
    assert decisions.next_due(state, crm) == 500.0
    assert decisions.fire_due(state, 499.0, crm, Learners()).state == state
    step = decisions.fire_due(state, 600.0, crm, Learners())
    assert step.outcomes == ("reminder_at_fired",)
    assert [e.type for e in step.emitted] == ["coupon_issued"]
    assert step.state.last_seen == 500.0  # fired at its deadline, not at "now"
    assert decisions.next_due(step.state, crm) is None


def test_a_follower_sees_what_an_earlier_decision_emitted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[Emitted] = []
    follower = ModuleType("follower")
    follower.NAME = "follower"  # type: ignore[attr-defined]
    follower.OUTCOMES = frozenset()  # type: ignore[attr-defined]
    follower.EMITS = frozenset()  # type: ignore[attr-defined]
    follower.FOLLOWS = frozenset({"customer_profile_updated"})  # type: ignore[attr-defined]
    follower.on_event = lambda state, event, ctx: Step(state)  # type: ignore[attr-defined]
    follower.due = lambda state, config: None  # type: ignore[attr-defined]
    follower.on_due = lambda state, now, ctx: Step(state)  # type: ignore[attr-defined]

    def on_emitted(state: CustomerState, emitted: Emitted, ctx: Context) -> Step:
        seen.append(emitted)
        return Step(state)

    follower.on_emitted = on_emitted  # type: ignore[attr-defined]
    monkeypatch.setattr(decisions, "REGISTRY", (*decisions.REGISTRY, follower))
    body = {"order_id": "o1", "cart_id": None, "lines": [], "total": 10.0, "currency": "EUR"}
    event = Event("e1", "order_placed", "c1", 1000.0, "web", None, body)
    after = CustomerState("c1", 1000.0, 1000.0, order_count=1, last_order_at=1000.0)
    step = decisions.after_event(None, after, event, CrmConfig(), Learners())
    assert [e.type for e in seen] == ["customer_profile_updated"]
    assert seen[0] in step.emitted


class _Sla:
    """A pure sub-state module of the standalone shape: a deadline an hour after a view."""

    NAME = "sla"
    OUTCOMES = frozenset({"sla_opened", "sla_breached"})
    EMITS = frozenset({"customer_profile_updated"})

    @staticmethod
    def on_event(sub: float, event: Event, cfg: float) -> tuple[float, list[Any], list[str]]:
        if event.type != "product_viewed":
            return sub, [], []
        return event.ts + cfg, [], ["sla_opened"]

    @staticmethod
    def due(sub: float, cfg: float) -> float | None:
        return sub or None

    @staticmethod
    def on_due(sub: float, now: float, cfg: float) -> tuple[float, list[Any], list[str]]:
        return 0.0, [{"type": "customer_profile_updated", "at": now}], ["sla_breached"]


def test_a_pure_sub_state_module_plugs_in_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    sla = SubState(
        _Sla, get=lambda s: s.updated_at, put=lambda s, v: replace(s, updated_at=v),
        config=lambda config: 3600.0,
    )  # fmt: skip
    monkeypatch.setattr(decisions, "REGISTRY", (*decisions.REGISTRY, sla))
    body = {"sku": "s1", "category": "shoes", "price": 10.0}
    view = Event("e1", "product_viewed", "c1", 1000.0, "web", None, body)
    crm, learners = CrmConfig(), Learners()
    step = decisions.after_event(None, CustomerState("c1", 1000.0, 1000.0), view, crm, learners)
    assert "sla_opened" in step.outcomes and decisions.next_due(step.state, crm) == 4600.0
    fired = decisions.fire_due(step.state, 5000.0, crm, learners)
    assert fired.outcomes == ("sla_breached",) and fired.emitted[0].at == 4600.0
    assert sla.due(fired.state, crm) is None  # what is left is the view's offer window
    with pytest.raises(ValueError, match="undeclared event types"):
        sla._step(step.state, (0.0, [{"type": "coupon_issued"}], []), 0.0)
