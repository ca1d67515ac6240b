"""Population views of the profiles: how many customers per lifecycle stage and segment. Pure.

>>> from streamcrm.state import CustomerState
>>> profile_distribution([CustomerState("c1", 0.0, 0.0), CustomerState("c2", 0.0, 0.0)])
{'lifecycle': {'prospect': 2}, 'segments': {}, 'tiers': {'none': 2}}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from streamcrm.outcomes import Tally
from streamcrm.state import CustomerState

# Yardsticks of the offers: summary name -> the outcome prefix of its hits.
BASELINES = {
    "popularity": "popular", "popularity_exact": "popular_exact", "recent": "recent",
    "cooc": "cooc",
}  # fmt: skip


def hit_rates(outcomes: Mapping[str, int]) -> dict[str, Any]:
    """Hit rates @5/@10 of the offers and of every baseline, at the same evaluation
    moments (None before any offer was evaluated); the best baseline and the ratio of the
    offers to it; the upper bound (share of targets the system had seen at all).

    >>> r = hit_rates({"nbo_evaluated": 4, "model_hit_at_5": 2, "recent_hit_at_5": 1})
    >>> r["offer_hit_rate_at_5"], r["baseline_hit_rate_at_5"]["best"], r["offer_vs_best_baseline"]
    (0.5, 0.25, 2.0)
    """
    o = Tally(outcomes)
    n = o["nbo_evaluated"]

    def rate(key: str) -> float | None:
        return round(o[key] / n, 4) if n else None

    rates: dict[str, Any] = {"offers_evaluated": n}
    for k in (5, 10):
        model = rates[f"offer_hit_rate_at_{k}"] = rate(f"model_hit_at_{k}")
        rates[f"popularity_hit_rate_at_{k}"] = rate(f"popular_hit_at_{k}")
        base: dict[str, Any] = {name: rate(f"{key}_hit_at_{k}") for name, key in BASELINES.items()}
        named = [(v, name) for name, v in base.items() if v is not None]
        best, which = max(named) if named else (None, None)
        base["best"] = best
        rates[f"baseline_hit_rate_at_{k}"] = base
        rates[f"best_baseline_at_{k}"] = which
        ratio = round(model / best, 4) if model is not None and best else None
        rates["offer_vs_best_baseline" + ("" if k == 5 else f"_at_{k}")] = ratio
        # What the gate chose between, at the same moments: the model's order, the fallback's.
        rates[f"ranker_hit_rate_at_{k}"] = {
            "learned": rate(f"learned_hit_at_{k}"), "fallback": rate(f"fallback_hit_at_{k}"),
        }  # fmt: skip
    # The served list scored greedily above; this one is what was shown (with exploration).
    rates["offer_shown_hit_rate_at_5"] = rate("shown_hit_at_5")
    rates["offer_hit_rate_upper_bound"] = rate("nbo_target_seen")
    rates["offers_served_by"] = {
        "model": o["offer_by_model"], "fallback": o["offer_by_fallback"],
    }  # fmt: skip
    return rates


def profile_distribution(states: Iterable[CustomerState]) -> dict[str, Any]:
    lifecycle: Counter[str] = Counter()
    segments: Counter[str] = Counter()
    tiers: Counter[str] = Counter()
    for state in states:
        lifecycle[state.profile.lifecycle_stage] += 1
        tiers[state.profile.tier] += 1
        if state.profile.segment:
            segments[state.profile.segment] += 1
    return {
        "lifecycle": dict(lifecycle.most_common()),
        "segments": dict(segments.most_common()),
        "tiers": dict(tiers.most_common()),
    }
