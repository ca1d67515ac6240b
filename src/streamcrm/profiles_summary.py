"""Population views of the profiles: how many customers per lifecycle stage and segment. Pure.

>>> from streamcrm.state import CustomerState
>>> profile_distribution([CustomerState("c1", 0.0, 0.0), CustomerState("c2", 0.0, 0.0)])
{'lifecycle': {'prospect': 2}, 'segments': {}, 'tiers': {'none': 2}}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from streamcrm.state import CustomerState


def hit_rates(outcomes: Mapping[str, int]) -> dict[str, Any]:
    """Prequential hit rates of the offer model and the popularity baseline (None before
    any offer was evaluated).

    >>> hit_rates({"nbo_evaluated": 4, "model_hit_at_5": 1, "popular_hit_at_5": 2})["offer_hit_rate_at_5"]
    0.25
    """
    n = outcomes.get("nbo_evaluated", 0)
    rates: dict[str, Any] = {"offers_evaluated": n}
    for name, key in (("offer", "model"), ("popularity", "popular")):
        for k in (5, 10):
            rates[f"{name}_hit_rate_at_{k}"] = (
                round(outcomes.get(f"{key}_hit_at_{k}", 0) / n, 4) if n else None
            )
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
