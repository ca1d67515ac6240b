"""``evolve(obj, **changes)``: :func:`dataclasses.replace` for frozen, slotted state classes.

The decision path makes about five modified copies of a customer's state per event.
``dataclasses.replace`` walks the class's field objects and calls ``__init__`` with
keywords, which sets each of ``CustomerState``'s 25 fields through
``object.__setattr__``: it was the largest single cost of the decision core (23% of a
cProfile run at 100,000 SKUs). Here each class gets a generated copier that reads and
writes its slots straight through their descriptors, then sets the changed fields.

Only for classes without ``__post_init__`` or ``init=False`` fields (copies must be what
``replace`` would build); anything else is refused when first used.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True, slots=True)
... class Point:
...     x: int
...     y: int = 0
>>> p = Point(1, 2)
>>> evolve(p, y=5), p
(Point(x=1, y=5), Point(x=1, y=2))
>>> evolve(p, z=1)
Traceback (most recent call last):
...
TypeError: Point has no field 'z'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
Copier = Callable[[Any, dict[str, Any]], Any]
_COPIERS: dict[type, Copier] = {}


def evolve(obj: T, /, **changes: Any) -> T:
    """A copy of ``obj`` with ``changes``; ``obj`` itself is never modified."""
    copier = _COPIERS.get(type(obj))
    if copier is None:
        copier = _COPIERS[type(obj)] = _copier(type(obj))
    result: T = copier(obj, changes)
    return result


def fast_init(cls: type[T]) -> type[T]:
    """Give a frozen, slotted dataclass an ``__init__`` that sets its slots through their
    descriptors, as :func:`evolve` copies: the generated one calls ``object.__setattr__``
    per field (about 40% slower; a decision step builds several such objects per event).
    The same signature and defaults; default factories and keyword-only fields refused.

    >>> from dataclasses import dataclass
    >>> @fast_init
    ... @dataclass(frozen=True, slots=True)
    ... class Pair:
    ...     a: int
    ...     b: tuple[int, ...] = ()
    >>> Pair(1), Pair(1, b=(2,)) == Pair(a=1, b=(2,))
    (Pair(a=1, b=()), True)
    """
    fields = _plain_fields(cls, "fast_init")
    if any(f.default_factory is not dataclasses.MISSING or f.kw_only for f in fields):
        msg = f"fast_init cannot build {cls.__name__}: a default factory or keyword-only field"
        raise TypeError(msg)
    scope: dict[str, Any] = {}
    params, body = [], []
    for i, f in enumerate(fields):
        scope[f"_set{i}"] = cls.__dict__[f.name].__set__
        if f.default is dataclasses.MISSING:
            params.append(f.name)
        else:
            scope[f"_default{i}"] = f.default
            params.append(f"{f.name}=_default{i}")
        body.append(f"    _set{i}(self, {f.name})\n")
    source = f"def __init__(self, {', '.join(params)}):\n" + "".join(body)
    exec(source, scope)  # noqa: S102 - source built from the class's own field names
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


def _plain_fields(cls: type, user: str) -> tuple[dataclasses.Field[Any], ...]:
    fields = dataclasses.fields(cls)
    if "__slots__" not in cls.__dict__ or hasattr(cls, "__post_init__"):
        msg = f"{user} needs a slotted dataclass without __post_init__, not {cls.__name__}"
        raise TypeError(msg)
    if any(not f.init for f in fields):
        msg = f"{user} cannot take {cls.__name__}: it has init=False fields"
        raise TypeError(msg)
    return fields


def _copier(cls: type) -> Copier:
    fields = _plain_fields(cls, "evolve")
    names = [f.name for f in fields]
    setters = {name: cls.__dict__[name].__set__ for name in names}
    scope: dict[str, Any] = {"new": object.__new__, "cls": cls, "setters": setters}
    scope.update({f"s{i}": setters[name] for i, name in enumerate(names)})
    body = "".join(f"    s{i}(n, o.{name})\n" for i, name in enumerate(names))
    # Straight-line code: a loop over the fields costs about twice as much per copy.
    source = (
        "def copy(o, changes):\n    n = new(cls)\n" + body
        + "    for name, value in changes.items():\n"
        + "        setter = setters.get(name)\n"
        + "        if setter is None:\n"
        + "            raise TypeError(f'{cls.__name__} has no field {name!r}')\n"
        + "        setter(n, value)\n"
        + "    return n\n"
    )  # fmt: skip
    exec(source, scope)  # noqa: S102 - source built from the class's own field names
    copier: Copier = scope["copy"]
    return copier
