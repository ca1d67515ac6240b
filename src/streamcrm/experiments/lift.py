"""The intent-to-treat lift readout of the abandoned-cart campaign: per arm (treatment,
holdout) the abandoned carts and the recovered ones, the recovery rates with Wilson
intervals and their difference with Newcombe's. Pure: it reads outcome counters.

The unit is the abandoned cart; customers are randomised, so a customer's carts share an
arm, and with many carts per customer the intervals are somewhat too narrow (a customer-
clustered bootstrap needs per-customer rows, which counters do not keep).

>>> readout = lift_readout({"itt_abandoned_treatment": 180, "itt_recovered_treatment": 54,
...                         "itt_abandoned_holdout": 20, "itt_recovered_holdout": 3})
>>> readout["difference"]["estimate"], readout["holdout"]["recovery_rate"]["estimate"]
(0.15, 0.15)
>>> lift_readout({"itt_abandoned_treatment": 3})["reason"]
'no abandoned carts in the holdout arm yet'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streamcrm.outcomes import Tally
from streamcrm.stats.intervals import newcombe_diff, wilson

ARMS = ("treatment", "holdout")


def lift_readout(counts: Mapping[str, int]) -> dict[str, Any]:
    o = Tally(counts)
    abandoned = {arm: o[f"itt_abandoned_{arm}"] for arm in ARMS}
    # A cart abandoned before the readout began can recover within it: cap at its arm's carts.
    recovered = {arm: min(o[f"itt_recovered_{arm}"], abandoned[arm]) for arm in ARMS}
    out: dict[str, Any] = {
        "unit": "abandoned cart",
        "method": "Wilson per arm, Newcombe difference",
    }
    for arm in ARMS:
        out[arm] = {"carts_abandoned": abandoned[arm], "recovered": recovered[arm]}
        if abandoned[arm]:
            out[arm]["recovery_rate"] = wilson(recovered[arm], abandoned[arm]).as_dict()
    missing = [arm for arm in ARMS if not abandoned[arm]]
    if missing:
        out["reason"] = f"no abandoned carts in the {missing[0]} arm yet"
        return out
    out["difference"] = newcombe_diff(
        recovered["treatment"], abandoned["treatment"], recovered["holdout"], abandoned["holdout"]
    ).as_dict()
    return out
