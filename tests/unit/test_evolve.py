"""evolve() builds exactly what dataclasses.replace builds, for every state class."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamcrm.evolve import evolve
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
