"""The faults a verify run injects, and when. Pure.

Faults are spread over the publishing, each at a share of the workload acknowledged,
so every one lands while workers are busy (and the next waits until the cluster has
recovered from the last, so each recovery is measured on its own).

>>> [(f.action, f.at) for f in fault_plan(kills=1)]
[('add', 0.15), ('kill', 0.38), ('remove', 0.62), ('term', 0.85)]
>>> [f.action for f in fault_plan(kills=2, redis_outage=True)]
['add', 'kill', 'remove', 'kill', 'term', 'redis']
"""

from __future__ import annotations

from dataclasses import dataclass

ACTIONS = {
    "add": "start a second worker (rebalance)",
    "kill": "SIGKILL the first worker and start it again",
    "remove": "SIGTERM the second worker for good (scale-in)",
    "term": "SIGTERM the first worker and start it again (a deploy)",
    "redis": "take Redis away and bring it back empty",
}


@dataclass(frozen=True, slots=True)
class Fault:
    action: str
    at: float  # share of the workload acknowledged when it happens

    def describe(self) -> str:
        return ACTIONS[self.action]


def fault_plan(*, kills: int = 2, redis_outage: bool = False) -> list[Fault]:
    actions = ["add"] + ["kill"] * min(kills, 1) + ["remove"] + ["kill"] * max(kills - 1, 0)
    actions += ["term"] + (["redis"] if redis_outage else [])
    step = 0.7 / max(len(actions) - 1, 1)
    return [Fault(a, round(0.15 + i * step, 2)) for i, a in enumerate(actions)]
