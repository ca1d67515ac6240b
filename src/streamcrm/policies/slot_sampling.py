"""The offers' stochastic ranking policy: per-slot exploration with an exact probability
for every slot. Pure.

The pool is the served order's best ``N`` candidates (``offers.exposure_pool``); the greedy
list ``g_1 .. g_m`` is its first ``m = min(k, N)``. Each slot ``j`` explores independently
with its share ``e_j`` (``offers.exploration`` for the last slot, as before this policy,
``offers.exploration_slots`` for each other). Slots that do not explore show their greedy
item; the exploring slots, in slot order, get a uniform draw without replacement from the
pool less the greedy items still shown. The draw is seeded by the offer id, so a replay
explores exactly as live did.

By exchangeability each exploring slot's item is uniform over what is left, so the chance
of item ``a`` in slot ``j`` has a closed form (``marginal``): with ``C`` the number of the
other slots that explore (a Poisson-binomial count),

    P(j = a) = (1 - e_j) [a = g_j] + e_j * sum_c P(C = c) * avail(a) / (N - m + 1 + c)

where, for ``a = g_i`` (another slot's greedy item), ``a`` is available only when slot
``i`` explores too. Every pool item has a chance in every slot, which is what lets other
orders of the pool be evaluated from the logs (``streamcrm.ope.exposure``).

>>> shares = slot_shares(3, last=0.5, others=0.0)
>>> marginal(["a", "b", "c", "d"], 3, shares, 2, "c"), marginal(["a", "b", "c", "d"], 3, shares, 2, "d")
(0.75, 0.25)
>>> sample(["a", "b", "c", "d"], 3, slot_shares(3, last=0.0, others=0.0), "offer-1")
['a', 'b', 'c']
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from functools import lru_cache

POLICY = "slot-epsilon-v1"


def slot_shares(k: int, *, last: float, others: float) -> tuple[float, ...]:
    """Each slot's exploration share: ``others`` for slots 1 .. k-1, ``last`` for slot k."""
    return tuple([others] * (k - 1) + [last]) if k > 0 else ()


def rng_of(seed: str) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big"))


def sample(pool: Sequence[str], k: int, shares: Sequence[float], seed: str) -> list[str]:
    """The shown list: ``min(k, len(pool))`` distinct SKUs of ``pool`` (best first)."""
    m = min(k, len(pool))
    rng = rng_of(seed)
    explores = [rng.random() < shares[j] for j in range(m)]
    if not any(explores):
        return list(pool[:m])
    kept = {pool[j] for j in range(m) if not explores[j]}
    drawn = iter(rng.sample([s for s in pool if s not in kept], sum(explores)))
    return [next(drawn) if explores[j] else pool[j] for j in range(m)]


def _count_distribution(shares: Sequence[float]) -> list[float]:
    """P(exactly c of these slots explore), c = 0 .. len(shares)."""
    dist = [1.0]
    for e in shares:
        nxt = [0.0] * (len(dist) + 1)
        for c, p in enumerate(dist):
            nxt[c] += p * (1.0 - e)
            nxt[c + 1] += p * e
        dist = nxt
    return dist


def marginal(pool: Sequence[str], k: int, shares: Sequence[float], slot: int, sku: str) -> float:
    """The probability that ``sample`` shows ``sku`` in ``slot`` (0-based)."""
    n, m = len(pool), min(k, len(pool))
    if slot >= m or sku not in pool:
        return 0.0
    greedy = list(pool[:m])
    at = greedy.index(sku) if sku in greedy else -1
    return _marginal(n, m, tuple(shares), slot, greedy[slot] == sku, at)


@lru_cache(maxsize=4096)
def _marginal(n: int, m: int, shares: tuple[float, ...], slot: int, own: bool, at: int) -> float:
    """:func:`marginal` from what it depends on: the pool's size, the greedy list's, the
    shares, whether ``sku`` is the slot's greedy item and its greedy index (-1: none).
    Cached: every offer asks the same few (it was ~6% of the decision core, cProfile)."""
    e = shares[slot]
    p = (1.0 - e) if own else 0.0
    if e <= 0:
        return p
    others = [i for i in range(m) if i != slot]
    if at >= 0 and at != slot:  # available only if its own slot explores too
        rest = [shares[o] for o in others if o != at]
        dist = _count_distribution(rest)
        uniform = shares[at] * sum(q / (n - m + 2 + c) for c, q in enumerate(dist))
    else:
        dist = _count_distribution([shares[o] for o in others])
        uniform = sum(q / (n - m + 1 + c) for c, q in enumerate(dist))
    return p + e * uniform


def marginals(pool: Sequence[str], k: int, shares: Sequence[float]) -> list[list[float]]:
    """The whole table: per slot, each pool SKU's probability (rows sum to 1)."""
    m = min(k, len(pool))
    return [[marginal(pool, k, shares, j, sku) for sku in pool] for j in range(m)]
