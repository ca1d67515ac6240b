"""The Open Bandit Dataset (ZOZOTOWN, Saito et al., CC BY 4.0): logged impressions of one
item in one of three positions, with the click and the logging policy's propensity.

The target policies here choose an item per position, independently of the user
(``Policy``: position -> item -> probability), which is what the check on the BTS log needs:
BTS's own behaviour, summarised as its per-position item distribution in ``bts/all.csv``.

>>> import io
>>> text = (",timestamp,item_id,position,click,propensity_score,user_feature_0\\n"
...         "0,2019-11-24 00:00:34+00:00,14,3,0,0.0125,ab\\n"
...         "1,2019-11-24 00:00:35+00:00,7,1,1,0.0125,cd\\n")
>>> log = read_log(io.StringIO(text), "all.csv")
>>> log.items, log.positions, log.clicks, log.propensities
([14, 7], [3, 1], [0, 1], [0.0125, 0.0125])
>>> empirical_policy(log)[3]
{14: 1.0}
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TextIO

Policy = dict[int, dict[int, float]]  # position -> item -> probability

REQUIRED = ("item_id", "position", "click", "propensity_score")


@dataclass
class Log:
    items: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    clicks: list[int] = field(default_factory=list)
    propensities: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def ctr(self) -> float:
        return sum(self.clicks) / len(self.clicks)


def read_log(lines: Iterable[str] | TextIO, name: str) -> Log:
    """Read ``all.csv``; a missing column or a bad value is a ``ValueError`` naming the line."""
    reader = csv.DictReader(lines)
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        msg = f"{name}: not an Open Bandit Dataset log (missing columns {', '.join(missing)})"
        raise ValueError(msg)
    log = Log()
    for number, row in enumerate(reader, start=2):
        try:
            item, position = int(row["item_id"]), int(row["position"])
            click, p = int(row["click"]), float(row["propensity_score"])
        except (TypeError, ValueError):
            msg = f"{name} line {number}: item_id, position and click must be integers and propensity_score a number"
            raise ValueError(msg) from None
        if click not in (0, 1) or not 0.0 < p <= 1.0:
            msg = f"{name} line {number}: click must be 0 or 1 and propensity_score in (0, 1] (got {click}, {p})"
            raise ValueError(msg)
        log.items.append(item)
        log.positions.append(position)
        log.clicks.append(click)
        log.propensities.append(p)
    if not log.items:
        msg = f"{name}: no impressions"
        raise ValueError(msg)
    return log


def read_item_context(lines: Iterable[str] | TextIO, name: str) -> dict[int, dict[str, float]]:
    """Item features as River feature dicts: numeric columns as they are, hashed ones as a
    dense one-hot (every level present as 0 or 1: River's StandardScaler scales a key that
    only ever appears as 1 to 0)."""
    reader = csv.DictReader(lines)
    if "item_id" not in (reader.fieldnames or []):
        msg = f"{name}: not an item_context.csv (no item_id column)"
        raise ValueError(msg)
    rows = list(reader)
    columns = [c for c in reader.fieldnames or [] if c.startswith("item_feature")]
    numeric = {c for c in columns if all(_is_number(r[c]) for r in rows)}
    levels = {c: sorted({r[c] for r in rows}) for c in columns if c not in numeric}
    out: dict[int, dict[str, float]] = {}
    for row in rows:
        x = {c: float(row[c]) for c in columns if c in numeric}
        for c, values in levels.items():
            x.update({f"{c}={v}": float(row[c] == v) for v in values})
        out[int(row["item_id"])] = x
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def empirical_policy(log: Log) -> Policy:
    """Per position, the share of impressions of each item (e.g. what BTS did)."""
    counts: dict[int, Counter[int]] = {}
    for item, position in zip(log.items, log.positions, strict=True):
        counts.setdefault(position, Counter())[item] += 1
    return {
        pos: {item: n / sum(c.values()) for item, n in c.items()}
        for pos, c in sorted(counts.items())
    }


def uniform_policy(items: Iterable[int], positions: Iterable[int]) -> Policy:
    pool = sorted(set(items))
    return {pos: dict.fromkeys(pool, 1.0 / len(pool)) for pos in sorted(set(positions))}


def popularity_policy(log: Log, positions: Iterable[int], top: int = 10) -> Policy:
    """Uniform over the ``top`` items with the most clicks in ``log`` (ties: more impressions),
    in every position: a popularity list learned on another log than the one evaluated."""
    clicks: Counter[int] = Counter()
    shown: Counter[int] = Counter()
    for item, click in zip(log.items, log.clicks, strict=True):
        clicks[item] += click
        shown[item] += 1
    best = sorted(shown, key=lambda i: (-clicks[i], -shown[i], i))[:top]
    return {pos: dict.fromkeys(best, 1.0 / len(best)) for pos in sorted(set(positions))}
