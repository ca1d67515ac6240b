"""Each decision reaches only the learners its signature names (decisions.learner_view).

mypy holds the code to the views; this holds the running decisions to them: every
decision in the registry runs with ``ctx.learners`` replaced by an object that has only
the members its ``ctx: Context[View]`` lists (nothing for a bare ``Context``), over
synthetic traffic, and must give the same outputs as with the full learners. And every
member a view lists is used in that run (a view no wider than what is used).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import orjson
import pytest
from typing_extensions import get_protocol_members, is_protocol

from streamcrm import decisions
from streamcrm.crm_config import CrmConfig, Learners
from streamcrm.decisions import learner_view
from streamcrm.events import Event, parse_ts
from streamcrm.ingest import Processor, Record
from streamcrm.learning.anomaly import AnomalyDetector
from streamcrm.protocol import Context, Decision, Emitted, Step, on_emitted_of
from streamcrm.replay.runner import KINDS
from streamcrm.state import CustomerState
from streamcrm.synthetic import generate


class Only:
    """Just the members of ``view``, each taken from ``target``; records what is used."""

    def __init__(self, view: Any, target: object, used: set[str], path: str) -> None:
        self._members: dict[str, Any] = {}
        self._used, self._path = used, path
        for name in get_protocol_members(view) if view is not object else ():
            member = inspect.getattr_static(view, name)
            value = getattr(target, name)
            if isinstance(member, property):
                kind = typing.get_type_hints(member.fget)["return"]
                if is_protocol(kind):
                    value = Only(kind, value, used, f"{path}.{name}")
            self._members[name] = value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._members:
            raise AttributeError(f"{self._path}.{name} is not in the decision's view")
        self._used.add(f"{self._path}.{name}")
        return self._members[name]


def view_of(fn: Callable[..., Step]) -> Any:
    """The learner view a decision function's ``ctx`` names (``object``: none)."""
    args = typing.get_args(typing.get_type_hints(fn)["ctx"])
    return args[0] if args else object


class Restricted:
    """A decision whose functions see only their declared views of the learners."""

    def __init__(self, decision: Decision, used: set[str]) -> None:
        self.decision, self.used = decision, used
        self.NAME, self.OUTCOMES = decision.NAME, decision.OUTCOMES
        self.EMITS, self.FOLLOWS = decision.EMITS, decision.FOLLOWS

    def _ctx(self, fn: Callable[..., Step], ctx: Context[Learners]) -> Context[Any]:
        learners = Only(view_of(fn), ctx.learners, self.used, self.NAME)
        return Context(ctx.config, learners, ctx.before)

    def on_event(self, state: CustomerState, event: Event, ctx: Context[Learners]) -> Step:
        fn = self.decision.on_event
        return fn(state, event, self._ctx(fn, ctx))

    def on_emitted(self, state: CustomerState, emitted: Emitted, ctx: Context[Learners]) -> Step:
        fn = on_emitted_of(self.decision)
        return fn(state, emitted, self._ctx(fn, ctx))

    def due(self, state: CustomerState, config: CrmConfig) -> float | None:
        return self.decision.due(state, config)

    def on_due(self, state: CustomerState, now: float, ctx: Context[Learners]) -> Step:
        fn = self.decision.on_due
        return fn(state, now, self._ctx(fn, ctx))


def _run(clock: str, n: int = 6000) -> list[bytes]:
    """Every batch's changed states, emitted events, outcomes and decisions, serialised."""
    # Uplift targeting on (and deciding after 5 resolved carts per arm, half held out), so
    # the abandoned-cart decision's uplift view is exercised too.
    base = CrmConfig()
    abandon = replace(
        base.abandon, targeting=replace(base.abandon.targeting, enabled=True, min_per_arm=5)
    )
    contact = replace(base.contact, holdout_share=0.5)
    processor = Processor(KINDS, crm=replace(base, abandon=abandon, contact=contact), clock=clock)
    # Warm up after 20 scoring moments, not 500, so this short run also scores with the
    # coupon-abuse detector (its view's reads are used, not only its learn_one).
    processor.learners.anomaly = AnomalyDetector(warmup=20)
    table: dict[str, CustomerState] = {}
    rows = list(generate(n, seed=5, customers=120, farmer_share=0.05))  # some get flagged
    out = []
    for start in range(0, len(rows), 200):
        part = rows[start : start + 200]
        chunk = [Record(r.topic_kind, 0, start + i, r.key, r.value) for i, r in enumerate(part)]
        now = max(parse_ts(orjson.loads(r.value)["ts"]) for r in part)
        batch = processor.process(chunk, table.get, now)
        assert not batch.timer_errors and not batch.dead_by_reason
        for cid, (_, state) in batch.states.items():
            table[cid] = state
        emitted = {kind: sorted(map(repr, keyed)) for kind, keyed in batch.emitted.items()}
        out.append(
            repr((sorted(batch.states.items()), emitted, sorted(batch.outcomes.items()),
                  batch.decisions)).encode()
        )  # fmt: skip
    return out


def _declared(registry: tuple[Decision, ...]) -> set[str]:
    """Every member path the views of ``registry`` declare, as ``decision.member[.method]``."""
    paths: set[str] = set()

    def walk(view: Any, path: str) -> None:
        for name in get_protocol_members(view):
            paths.add(f"{path}.{name}")
            member = inspect.getattr_static(view, name)
            if isinstance(member, property):
                kind = typing.get_type_hints(member.fget)["return"]
                if is_protocol(kind):
                    walk(kind, f"{path}.{name}")

    for decision in registry:
        for fn in (decision.on_event, on_emitted_of(decision), decision.on_due):
            view = view_of(fn)
            if view is not object:
                walk(view, decision.NAME)
    return paths


@pytest.mark.parametrize("clock", ["event", "wall"])
def test_decisions_run_on_their_views_alone(clock: str, monkeypatch: pytest.MonkeyPatch) -> None:
    full, declared = _run(clock), _declared(decisions.REGISTRY)
    used: set[str] = set()
    monkeypatch.setattr(
        decisions, "REGISTRY", tuple(Restricted(d, used) for d in decisions.REGISTRY)
    )
    assert _run(clock) == full
    assert used == declared, "a view lists a member no decision uses (or the run missed it)"


def test_the_views_are_what_the_learner_decisions_name() -> None:
    views = {
        d.NAME: {view_of(fn) for fn in (d.on_event, on_emitted_of(d), d.on_due)} - {object}
        for d in decisions.REGISTRY
    }
    assert views["churn_labels"] == {learner_view.ChurnLabelLearners}
    assert views["profile"] == {learner_view.ProfileLearners}
    assert views["offers"] == {learner_view.OfferLearners}
    assert views["abandoned_cart"] == {learner_view.CartLearners}  # the uplift learner
    assert views["winback"] == set()


def test_a_reach_beyond_the_view_fails() -> None:
    used: set[str] = set()
    learners = Only(learner_view.ProfileLearners, Learners(), used, "profile")
    assert learners.churn.churn_score({}) == pytest.approx(0.5)
    with pytest.raises(AttributeError, match=r"profile\.churn\.learn_one is not in"):
        learners.churn.learn_one({}, ordered_again=True)
    with pytest.raises(AttributeError, match=r"profile\.ranker is not in"):
        learners.ranker  # noqa: B018
    nothing = Only(object, Learners(), used, "winback")
    with pytest.raises(AttributeError, match=r"winback\.churn is not in"):
        nothing.churn  # noqa: B018
    assert used == {"profile.churn", "profile.churn.churn_score"}
