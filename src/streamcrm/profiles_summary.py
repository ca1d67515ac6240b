"""Population views of the profiles: how many customers per lifecycle stage and segment. Pure.

>>> from streamcrm.state import CustomerState
>>> profile_distribution([CustomerState("c1", 0.0, 0.0), CustomerState("c2", 0.0, 0.0)])
{'lifecycle': {'prospect': 2}, 'segments': {}, 'tiers': {'none': 2}}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from streamcrm.state import CustomerState


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
