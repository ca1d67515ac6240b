"""The simple rules every offer is measured against, taken at the offer's own moment. Pure.

Each rule ranks SKUs for one customer; none may rank what the offer may not show (the
cart, recent purchases: ``excluded``). They are what a shop would do without a model:

- **popularity (decayed)**: the trending list (:class:`CandidateStats` ``top``);
- **popularity (exact)**: all-time interaction counts (views 1, cart adds 3, buys 5, no
  decay) of the SKUs :class:`CandidateStats` tracks;
- **recent**: the customer's last distinct viewed SKUs, most recent first;
- **cooc** (item co-occurrence, session-kNN): SKUs co-viewed or co-carted by anyone
  with the customer's last 5 viewed SKUs, by summed strength.

>>> from streamcrm.state import CustomerState, View
>>> s = CustomerState("c", 0.0, 0.0, recent_views=(View("b", "x", 1.0, 2.0), View("a", "x", 1.0, 1.0)))
>>> recent(s, frozenset({"b"}), 10)
('a',)
>>> stats = CandidateStats()
>>> stats.observe("a", "x", 1.0, ts=0.0, weight=1.0, recent=[])
>>> stats.observe("b", "x", 1.0, ts=0.0, weight=3.0, recent=[])
>>> popular_exact(stats, frozenset())
('b', 'a')
"""

from __future__ import annotations

from streamcrm.learning.candidates import CandidateStats
from streamcrm.state import CustomerState

SEEDS = 5  # last viewed SKUs the co-occurrence rule starts from
DEPTH = 10  # every list is kept to the deepest cut evaluated (@10)


def recent(state: CustomerState, excluded: frozenset[str], n: int = DEPTH) -> tuple[str, ...]:
    """The last ``n`` distinct viewed SKUs, most recent first (``recent_views`` is distinct)."""
    out = [v.sku for v in state.recent_views if v.sku not in excluded]
    return tuple(out[:n])


def cooc(
    state: CustomerState, stats: CandidateStats, excluded: frozenset[str], n: int = DEPTH
) -> tuple[str, ...]:
    """Neighbours of the last :data:`SEEDS` viewed SKUs by summed strength (ties by SKU)."""
    score: dict[str, float] = {}
    get = score.get
    for view in state.recent_views[:SEEDS]:
        for sku, weight in stats.neighbour_items(view.sku):
            if sku not in excluded:
                score[sku] = get(sku, 0.0) + weight
    return cooc_of(score, excluded, n)


def cooc_of(
    strength: dict[str, float], excluded: frozenset[str], n: int = DEPTH
) -> tuple[str, ...]:
    """:func:`cooc` from the summed strengths (over the same seeds, in the same order; an
    offer's candidates sum them already), ``excluded`` left out."""
    # (-strength, sku) tuples: the order of a key call per SKU, without the calls. A full
    # sort, not heapq.nsmallest (the same list: SKUs are unique): ~20 neighbours sort in
    # C faster than nsmallest's Python loop walks them.
    best = sorted([(-weight, sku) for sku, weight in strength.items() if sku not in excluded])[:n]
    return tuple([sku for _, sku in best])


def popular(
    stats: CandidateStats, now: float, excluded: frozenset[str], n: int = DEPTH
) -> tuple[str, ...]:
    """The decayed popularity list (the trending list the candidates also draw on)."""
    return tuple([sku for sku, _ in stats.top(3 * n, now) if sku not in excluded][:n])


def popular_exact(
    stats: CandidateStats, excluded: frozenset[str], n: int = DEPTH
) -> tuple[str, ...]:
    """All-time weighted interaction counts (views 1, cart adds 3, buys 5), no decay."""
    return tuple([sku for sku in stats.top_counts(n + len(excluded)) if sku not in excluded][:n])
