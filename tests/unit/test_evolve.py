"""evolve() builds exactly what dataclasses.replace builds, for every state class."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamcrm.evolve import evolve, fast_init
from streamcrm.state import Cart, CartLine, CustomerState, OfferState, Profile

FIELDS = [f.name for f in dataclasses.fields(CustomerState)]
base = CustomerState("c1", 1.0, 2.0, cart=Cart("k1", (CartLine("s", 1, 2.0),)))


@given(names=st.lists(st.sampled_from(FIELDS), unique=True), value=st.integers())
def test_evolve_equals_replace_and_leaves_the_original(names: list[str], value: int) -> None:
    changes = {name: value for name in names}
    before = dataclasses.astuple(base)
    assert evolve(base, **changes) == dataclasses.replace(base, **changes)
    assert dataclasses.astuple(base) == before


@pytest.mark.parametrize(
    ("obj", "changes"),
    [(Profile(), {"points": 3}), (Cart("k"), {"version": 2}),
     (OfferState("o", 1.0, ()), {"evaluated": True})],
)  # fmt: skip
def test_evolve_copies_every_state_class(obj: object, changes: dict[str, object]) -> None:
    copy = evolve(obj, **changes)
    assert copy == dataclasses.replace(obj, **changes)  # type: ignore[type-var]
    assert hash(copy) == hash(dataclasses.replace(obj, **changes))  # type: ignore[type-var]


def test_evolve_refuses_unknown_fields_and_classes_it_cannot_copy() -> None:
    with pytest.raises(TypeError, match="no field 'nope'"):
        evolve(base, nope=1)

    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        x: int

    with pytest.raises(TypeError, match="slotted"):
        evolve(NoSlots(1), x=2)


@dataclasses.dataclass(frozen=True, slots=True)
class _Plain:
    a: int
    b: tuple[int, ...] = ()
    c: str | None = None


_Fast = fast_init(
    dataclasses.make_dataclass(
        "_Fast", [("a", int), ("b", tuple, ()), ("c", object, None)], frozen=True, slots=True
    )
)


@given(a=st.integers(), b=st.tuples(st.integers()), c=st.none() | st.text(), how=st.integers(0, 3))
def test_fast_init_builds_what_the_dataclass_init_builds(
    a: int, b: tuple[int, ...], c: str | None, how: int
) -> None:
    args, kwargs = [((a,), {}), ((a, b), {}), ((a,), {"c": c}), ((), {"a": a, "b": b, "c": c})][how]
    fast, plain = _Fast(*args, **kwargs), _Plain(*args, **kwargs)
    assert (fast.a, fast.b, fast.c) == (plain.a, plain.b, plain.c)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.a = 1  # type: ignore[misc]


def test_fast_init_refuses_default_factories() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class WithFactory:
        items: list[int] = dataclasses.field(default_factory=list)

    with pytest.raises(TypeError, match="default factory"):
        fast_init(WithFactory)
