"""The kinds of value a rules file holds (:data:`streamcrm.rules.RULES` names one per key):
how each is read from TOML and checked (``load``, raising on bad input), said in an error
(``allowed``) and written back (``dump``). Pure.

>>> SHARE.load(0.25), DURATION.load("2h")
(0.25, 7200.0)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streamcrm.config import parse_duration
from streamcrm.policies.abandoned_cart import Stage
from streamcrm.policies.contact import KINDS, KindRule


@dataclass(frozen=True, slots=True)
class Kind:
    """How one key's value is read from the file (``load``) and written back (``dump``)."""

    allowed: str  # said in errors
    load: Callable[[Any], Any]  # raises ValueError / TypeError / KeyError on bad input
    dump: Callable[[Any], Any] = lambda v: v


def _number(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise TypeError
    return float(v)


def _checked(test: Callable[[float], bool], convert: Callable[[Any], Any] = _number) -> Any:
    def load(v: Any) -> Any:
        value = convert(v)
        if not test(value):
            raise ValueError
        return value

    return load


def _integer(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError
    return v


def _boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise TypeError
    return v


def _text(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise TypeError
    return v


def _duration(v: Any) -> float:
    value = parse_duration(v) if isinstance(v, str) else _number(v)
    if not 0 <= value < math.inf:  # "inf" parses as a duration, and never comes
        raise ValueError
    return value


def _table_list(v: Any, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    if not isinstance(v, list) or not all(isinstance(i, dict) and set(i) == set(fields) for i in v):
        raise TypeError
    return v


def _ascending(values: list[float]) -> bool:
    return all(a < b for a, b in itertools.pairwise(values))


def _stages(v: Any) -> tuple[Stage, ...]:
    items = _table_list(v, ("name", "after", "incentive"))
    stages = tuple(
        Stage(_text(i["name"]), _duration(i["after"]), _boolean(i["incentive"])) for i in items
    )
    if len({s.name for s in stages}) != len(stages):
        raise ValueError
    return stages


def _coupon_tiers(v: Any) -> tuple[tuple[float, float], ...]:
    items = _table_list(v, ("min_cart_value", "percent"))
    tiers = tuple((_number(i["min_cart_value"]), _number(i["percent"])) for i in items)
    if not tiers or not _ascending([t[0] for t in tiers]):
        raise ValueError
    if not all(t[0] >= 0 and 0 < t[1] <= 100 for t in tiers):
        raise ValueError
    return tiers


def _vip_tiers(v: Any) -> tuple[tuple[str, float], ...]:
    items = _table_list(v, ("name", "min_spend"))
    tiers = tuple((_text(i["name"]), _number(i["min_spend"])) for i in items)
    names = [t[0] for t in tiers]
    if "none" in names or len(set(names)) != len(names) or not _ascending([t[1] for t in tiers]):
        raise ValueError
    return tiers


def _quiet_hours(v: Any) -> tuple[int, int] | None:
    if not isinstance(v, list) or len(v) not in (0, 2):
        raise TypeError
    if not v:
        return None
    start, end = (_integer(h) for h in v)
    if not (0 <= start < 24 and 0 <= end < 24):
        raise ValueError
    return start, end


def _contact_kinds(v: Any) -> dict[str, KindRule]:
    if not isinstance(v, dict) or set(v) != set(KINDS):
        raise TypeError
    rules = {}
    for name, body in v.items():
        if not isinstance(body, dict) or not set(body) <= {*_CAPS, *_SWITCHES}:
            raise TypeError
        caps = {k: _integer(body[k]) for k in _CAPS if k in body}
        if any(c < 0 for c in caps.values()):
            raise ValueError
        switches = {k: _boolean(body[k]) for k in _SWITCHES}
        rules[name] = KindRule(
            per_day=caps.get("per_day"), per_week=caps.get("per_week"), **switches
        )
    return rules


_CAPS = ("per_day", "per_week")  # integers, or left out: the shared caps
_SWITCHES = ("shared", "quiet", "marketing")  # each required, true or false


def _kind_dump(rule: KindRule) -> dict[str, Any]:
    caps = {k: getattr(rule, k) for k in _CAPS if getattr(rule, k) is not None}
    return caps | {k: getattr(rule, k) for k in _SWITCHES}


def _early_access(v: Any) -> tuple[tuple[str, float], ...]:
    items = _table_list(v, ("tier", "before"))
    offsets = tuple((_text(i["tier"]), _duration(i["before"])) for i in items)
    if len({t for t, _ in offsets}) != len(offsets) or any(b > 7 * 86_400 for _, b in offsets):
        raise ValueError
    return offsets


def _multipliers(v: Any) -> dict[str, float]:
    if not isinstance(v, dict) or "none" not in v:
        raise TypeError
    out = {_text(k): _number(x) for k, x in v.items()}
    if not all(x >= 0 for x in out.values()):
        raise ValueError
    return out


DURATION = Kind("a duration: seconds or 90s, 30m, 24h, 7d", _duration)
SHARE = Kind("a share between 0 and 1", _checked(lambda x: 0.0 <= x <= 1.0))
FACTOR = Kind("a number above 0", _checked(lambda x: x > 0))
AMOUNT = Kind("a number of at least 0", _checked(lambda x: x >= 0))
COUNT = Kind("an integer of at least 0", _checked(lambda x: x >= 0, _integer))
POSITIVE = Kind("an integer of at least 1", _checked(lambda x: x >= 1, _integer))
BOOL = Kind("true or false", _boolean)
TEXT = Kind("a non-empty string", _text)
STAGES = Kind(
    "a list of {name, after, incentive} tables, in time order, none before abandon_after, "
    "names unique",
    _stages,
    lambda v: [{"name": s.name, "after": s.after, "incentive": s.incentive} for s in v],
)
COUPON_TIERS = Kind(
    "a non-empty list of {min_cart_value, percent} tables, min_cart_value ascending, "
    "percent in (0, 100]",
    _coupon_tiers,
    lambda v: [{"min_cart_value": m, "percent": p} for m, p in v],
)
VIP_TIERS = Kind(
    "a list of {name, min_spend} tables, min_spend ascending, names unique and not 'none'",
    _vip_tiers,
    lambda v: [{"name": n, "min_spend": m} for n, m in v],
)
QUIET_HOURS = Kind(
    "[] (none) or [start, end], two whole hours 0-23, e.g. [21, 8]",
    _quiet_hours,
    lambda v: [] if v is None else list(v),
)
UTC_OFFSET = Kind("hours between -14 and 14", _checked(lambda x: -14.0 <= x <= 14.0))
CONTACT_KINDS = Kind(
    f"a table per message kind ({', '.join(KINDS)}), each with per_day and per_week "
    "(integers >= 0, or omitted: the shared max_per_day / max_per_week), shared, quiet and "
    "marketing (true or false)",
    _contact_kinds,
    lambda v: {k: _kind_dump(r) for k, r in v.items()},
)
EARLY_ACCESS = Kind(
    "a list of {tier, before} tables (before: a duration of at most 7d), tiers unique",
    _early_access,
    lambda v: [{"tier": t, "before": b} for t, b in v],
)
TARGETING = Kind(
    '"rule" (the coupon rule alone) or "uplift" (the rule\'s incentive only where the uplift '
    "learner expects it to pay for itself)",
    lambda v: {"rule": False, "uplift": True}[_text(v)],
    lambda v: "uplift" if v else "rule",
)
MULTIPLIERS = Kind("a table of tier name = multiplier >= 0, with 'none'", _multipliers, dict)
