"""Every outcome name the processor may count, collected in one place, and a reader that
refuses the rest.

Each decision declares its own (``OUTCOMES`` in its module, :mod:`streamcrm.decisions`);
the processor declares the few it counts itself. Stats, metrics, replays and the demo
read counters through :class:`Tally`, so a misspelt name raises instead of reading as a
silent zero; a test holds every counted outcome to this list.

>>> t = Tally({"couponed": 3})
>>> t["couponed"], t["reminded"]
(3, 0)
>>> t["couponned"]
Traceback (most recent call last):
...
KeyError: "undeclared outcome 'couponned' (see streamcrm.outcomes)"
>>> Tally({"suppressed_cap_24h": 2}).family("suppressed_")
{'cap_24h': 2}
"""

from __future__ import annotations

from collections.abc import Mapping

from streamcrm.decisions import REGISTRY
from streamcrm.ingest.processor import OUTCOMES as PROCESSOR_OUTCOMES

DECLARED: frozenset[str] = frozenset().union(
    PROCESSOR_OUTCOMES, *(decision.OUTCOMES for decision in REGISTRY)
)


def check(name: str) -> str:
    if name not in DECLARED:
        msg = f"undeclared outcome {name!r} (see streamcrm.outcomes)"
        raise KeyError(msg)
    return name


class Tally:
    """Read-only view of outcome counts that only answers declared names."""

    __slots__ = ("_counts",)

    def __init__(self, counts: Mapping[str, int]) -> None:
        self._counts = counts

    def __getitem__(self, name: str) -> int:
        return self._counts.get(check(name), 0)

    def family(self, prefix: str) -> dict[str, int]:
        """The counted outcomes named ``prefix<rest>``, as rest -> count (declared ones only)."""
        if not any(name.startswith(prefix) for name in DECLARED):
            msg = f"no declared outcome starts with {prefix!r} (see streamcrm.outcomes)"
            raise KeyError(msg)
        return {
            name.removeprefix(prefix): n
            for name, n in self._counts.items()
            if name.startswith(prefix) and check(name)
        }
