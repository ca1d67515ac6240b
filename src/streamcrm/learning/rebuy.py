"""Buy again: when a SKU the customer bought lately is a better offer than a slot of the
served order. Pure counting; learned at the offers' own evaluation moments.

No offer order (nor baseline) holds what the customer bought lately, yet some customers
come back for it (Taobao slice: 9 of 678 evaluation moments; REES46 slice: 13 of 169).
Whether that is worth a slot is measured, not assumed: at each evaluation moment where
the customer had recent purchases, it counts whether the target was their purchase of
rank ``j`` (most recent first: the *repeat-purchase rate by rank*) and whether it was at
position ``i`` of the fallback order (the *slot rate*, over the same moments). A recent
purchase goes before slot ``i`` only when its rate is above that slot's (and every
deeper slot's, so noise in the slots' order never lets it through) by a one-sided
two-proportion test: clear evidence, not a lucky few moments. The target is one SKU at
nearly every moment, so a list's hit rate is the sum of its slots' rates, and moving a
better item up cannot lower it. A log where nobody buys again never changes an offer.

>>> r = RebuyRates()
>>> r.update(base=("a", "b"), rebuy=("x",), targets={"x"})
>>> r.merge(["a", "b"], ["x"], 2)  # one repeat in one moment: not evidence yet
['a', 'b']
>>> for _ in range(10):
...     r.update(base=("a", "b"), rebuy=("x",), targets={"x"})
>>> r.merge(["a", "b"], ["x"], 2)
['x', 'a']
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamcrm.learning.river_state import BadState, integer

DEPTH = 3  # recent purchases considered, most recent first
SLOTS = 10  # positions of the served order measured (the deepest cut evaluated, @10)
Z = 1.645  # one-sided 95%: a purchase takes a slot only on clear evidence


def _zeros(n: int) -> list[int]:
    return [0] * n


@dataclass(slots=True)
class RebuyRates:
    moments: int = 0  # evaluation moments where the customer had recent purchases
    slot_hits: list[int] = field(default_factory=lambda: _zeros(SLOTS))
    rank_moments: list[int] = field(default_factory=lambda: _zeros(DEPTH))
    rank_hits: list[int] = field(default_factory=lambda: _zeros(DEPTH))
    # This worker's own counts since the last export (the same four, flattened).
    _outbox: list[int] = field(default_factory=lambda: _zeros(1 + SLOTS + 2 * DEPTH))

    def update(self, *, base: Sequence[str], rebuy: Sequence[str], targets: set[str]) -> None:
        """One evaluation moment: the fallback's list and the recent purchases (both as
        of the offer), and the SKUs the customer then added or bought."""
        if not rebuy:
            return
        box = self._outbox
        self.moments += 1
        box[0] += 1
        for i, sku in enumerate(base[:SLOTS]):
            if sku in targets:
                self.slot_hits[i] += 1
                box[1 + i] += 1
        for j, sku in enumerate(rebuy[:DEPTH]):
            self.rank_moments[j] += 1
            box[1 + SLOTS + j] += 1
            if sku in targets:
                self.rank_hits[j] += 1
                box[1 + SLOTS + DEPTH + j] += 1

    def rank_rate(self, j: int) -> tuple[float, int]:
        """(share, moments) of the moments whose target was the purchase of rank ``j``."""
        n = self.rank_moments[j]
        return (self.rank_hits[j] / n if n else 0.0), n

    def slot_rate(self, i: int) -> tuple[float, int]:
        """(share, moments) of the same kind of moments whose target was at slot ``i``."""
        n = self.moments
        return (self.slot_hits[i] / n if n and i < SLOTS else 0.0), n

    def beats(self, j: int, i: int) -> bool:
        """Is the purchase of rank ``j`` a better offer than slot ``i`` (and every slot
        after it), beyond noise? A one-sided two-proportion test at :data:`Z` with the Agresti-Caffo adjustment (one
        success and one failure added to each), so few or no moments never pass it."""
        a, n = self.rank_rate(j)
        if i >= SLOTS:
            return a > 0
        m = self.moments
        p = (a * n + 1) / (n + 2)
        q = (max(self.slot_hits[i:]) + 1) / (m + 2)
        return p - q > Z * math.sqrt(p * (1 - p) / (n + 2) + q * (1 - q) / (m + 2))

    def merge(self, base: list[str], rebuy: Sequence[str], k: int) -> list[str]:
        """``base`` with recent purchases moved into its top ``k`` where their rate is
        higher than the slot's they take; each list keeps its own order, ``base`` its
        length (what is pushed past the end drops). ``base`` itself if none qualifies."""
        rebuy = [sku for sku in rebuy[:DEPTH] if sku not in base]
        if not rebuy or not self.moments:
            return base
        out: list[str] = []
        i = j = 0
        while len(out) < k:
            if j < len(rebuy) and self._takes(j, i, len(base)):
                out.append(rebuy[j])
                j += 1
            elif i < len(base):
                out.append(base[i])
                i += 1
            else:
                break
        if j == 0:
            return base
        return (out + base[i:])[: max(len(base), len(out))]

    def _takes(self, j: int, i: int, n: int) -> bool:
        """Rank ``j`` before slot ``i`` of a list of ``n`` (past its end: any repeat seen)."""
        return self.rank_hits[j] > 0 if i >= n else self.beats(j, i)

    def export_delta(self) -> dict[str, Any] | None:
        """This worker's own counts since the last export (None: no moment counted)."""
        box = self._outbox
        if not box[0]:
            return None
        self._outbox = _zeros(len(box))
        return {
            "moments": box[0], "slot_hits": box[1 : 1 + SLOTS],
            "rank_moments": box[1 + SLOTS : 1 + SLOTS + DEPTH],
            "rank_hits": box[1 + SLOTS + DEPTH :],
        }  # fmt: skip

    def merge_delta(self, delta: Any) -> None:
        """Add another worker's :meth:`export_delta` (checked: :class:`BadState`)."""
        if delta is None:
            return
        if not isinstance(delta, dict):
            raise BadState("rebuy delta: expected an object")
        moments = integer(delta.get("moments"), "rebuy moments")
        slots = _counts(delta.get("slot_hits"), SLOTS, "rebuy slot hits")
        ranks = _counts(delta.get("rank_moments"), DEPTH, "rebuy rank moments")
        hits = _counts(delta.get("rank_hits"), DEPTH, "rebuy rank hits")
        self.moments += moments
        _add(self.slot_hits, slots)
        _add(self.rank_moments, ranks)
        _add(self.rank_hits, hits)

    def restore(self, data: Any) -> None:
        """Put back :meth:`as_dict` (a checkpoint; None: one written before these counts)."""
        if data is None:
            return
        if not isinstance(data, dict):
            raise BadState("rebuy counts: expected an object")
        self.moments = integer(data.get("moments"), "rebuy moments")
        self.slot_hits = _counts(data.get("slot_hits"), SLOTS, "rebuy slot hits")
        self.rank_moments = _counts(data.get("rank_moments"), DEPTH, "rebuy rank moments")
        self.rank_hits = _counts(data.get("rank_hits"), DEPTH, "rebuy rank hits")

    def as_dict(self) -> dict[str, Any]:
        return {
            "moments": self.moments, "slot_hits": list(self.slot_hits),
            "rank_moments": list(self.rank_moments), "rank_hits": list(self.rank_hits),
        }  # fmt: skip


def _counts(value: Any, n: int, what: str) -> list[int]:
    if not isinstance(value, list) or len(value) != n:
        raise BadState(f"{what}: expected a list of {n} counts")
    return [integer(v, what) for v in value]


def _add(into: list[int], counts: Iterable[int]) -> None:
    for i, c in enumerate(counts):
        into[i] += c


def recent_purchases(bought: Iterable[str], excluded: Iterable[str]) -> tuple[str, ...]:
    """The customer's last :data:`DEPTH` distinct purchases not in ``excluded`` (the cart),
    most recent first (``bought`` is most recent first)."""
    skip = set(excluded)
    out: list[str] = []
    for sku in bought:
        if sku not in skip and sku not in out:
            out.append(sku)
            if len(out) == DEPTH:
                break
    return tuple(out)
