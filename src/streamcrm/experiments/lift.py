"""The intent-to-treat lift readout of the abandoned-cart campaign: per arm (treatment,
holdout) the abandoned carts and the recovered ones, the recovery rates with Wilson
intervals and their difference with Newcombe's. Pure: it reads outcome counters.

``lift_readout`` counts from outcome counters, per abandoned cart; customers are randomised,
so a customer's carts share an arm, and with many carts per customer its intervals are
somewhat too narrow. ``lift_from_rows`` reads one ``cart_resolved`` record per abandoned cart
(:mod:`streamcrm.policies.cart_resolution`) and gives the readout at the unit of
randomisation, the customer, and per cart, with revenue and coupon cost.

>>> readout = lift_readout({"itt_abandoned_treatment": 180, "itt_recovered_treatment": 54,
...                         "itt_abandoned_holdout": 20, "itt_recovered_holdout": 3})
>>> readout["difference"]["estimate"], readout["holdout"]["recovery_rate"]["estimate"]
(0.15, 0.15)
>>> lift_readout({"itt_abandoned_treatment": 3})["reason"]
'no abandoned carts in the holdout arm yet'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from streamcrm.outcomes import Tally
from streamcrm.stats.bootstrap import bootstrap_cis
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


# Per-unit sums: treatment (units, carts, recovered carts, units recovered, revenue, coupons
# sent, coupon cost), then the same for the holdout.
_COLS = ("units", "carts", "recovered", "units_recovered", "revenue", "coupons", "coupon_cost")
_T, _H = 0, len(_COLS)


def lift_from_rows(
    rows: Iterable[Mapping[str, Any]], *, resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """The intent-to-treat readout from ``cart_resolved`` records (one per abandoned cart),
    at the unit of randomisation (``customer``) and per ``cart``: per arm the abandoned
    carts, recovered, recovery rate (Wilson), revenue per abandoned cart, coupons sent and
    their cost; the difference in rates (Newcombe) and in revenue per abandoned cart
    (percentile bootstrap over the unit), and the incremental revenue of the treatment arm
    minus its coupon cost (bootstrap). Deterministic for a seed.

    >>> rows = [{"customer_id": f"c{i}", "cart_id": f"k{i}", "arm": "holdout" if i % 5 == 0 else
    ...          "treatment", "recovered": i % 3 == 0, "revenue": 50.0 if i % 3 == 0 else 0.0,
    ...          "coupon_sent": i % 5 != 0, "coupon_cost": 5.0 if i % 15 == 3 else 0.0}
    ...         for i in range(300)]
    >>> out = lift_from_rows(rows, resamples=200)
    >>> out["customer"]["holdout"]["carts_abandoned"], out["cart"]["treatment"]["coupons_sent"]
    (60, 240)
    >>> sorted(out["customer"]["difference"])
    ['incremental_revenue', 'incremental_revenue_minus_coupon_cost', 'recovery_rate', 'revenue_per_abandoned_cart']
    """
    rows = list(rows)
    out: dict[str, Any] = {"resolved_carts": len(rows)}
    for unit, key in (("customer", "customer_id"), ("cart", "cart_id")):
        out[unit] = _unit_readout(rows, key, resamples=resamples, seed=seed)
    return out


def _unit_sums(rows: list[Mapping[str, Any]], key: str) -> np.ndarray:
    index: dict[Any, int] = {}
    sums: list[list[float]] = []
    for row in rows:
        i = index.setdefault((row[key], row["arm"]), len(index))
        if i == len(sums):
            sums.append([0.0] * (2 * len(_COLS)))
        base = _T if row["arm"] == "treatment" else _H
        u = sums[i]
        u[base] = 1.0
        u[base + 1] += 1.0
        u[base + 2] += 1.0 if row["recovered"] else 0.0
        u[base + 3] = max(u[base + 3], 1.0 if row["recovered"] else 0.0)
        u[base + 4] += float(row.get("revenue") or 0.0)
        u[base + 5] += 1.0 if row.get("coupon_sent") else 0.0
        u[base + 6] += float(row.get("coupon_cost") or 0.0)
    return np.asarray(sums, dtype=float).reshape(-1, 2 * len(_COLS))


def _unit_readout(
    rows: list[Mapping[str, Any]], key: str, *, resamples: int, seed: int
) -> dict[str, Any]:
    sums = _unit_sums(rows, key)
    total = sums.sum(axis=0)
    out: dict[str, Any] = {}
    units_of = "customers" if key == "customer_id" else "carts"
    for arm, base in (("treatment", _T), ("holdout", _H)):
        t = dict(zip(_COLS, (float(v) for v in total[base : base + len(_COLS)]), strict=True))
        carts = int(t["carts"])
        arm_out: dict[str, Any] = {
            units_of: int(t["units"]), "carts_abandoned": carts, "recovered": int(t["recovered"]),
            "revenue": round(t["revenue"], 2),
            "revenue_per_abandoned_cart": round(t["revenue"] / carts, 4) if carts else None,
            "coupons_sent": int(t["coupons"]), "coupon_cost": round(t["coupon_cost"], 2),
        }  # fmt: skip
        if t["units"]:
            # Per customer: the share of customers with a recovered cart (the randomised unit).
            hits = int(t["units_recovered"]) if key == "customer_id" else int(t["recovered"])
            arm_out["recovery_rate"] = wilson(hits, int(t["units"])).as_dict()
        out[arm] = arm_out
    if not (total[_T] and total[_H]) or len(sums) < 2:
        out["reason"] = "no resolved abandoned carts in one arm yet"
        return out
    col = 3 if key == "customer_id" else 2  # customers recovered, or carts recovered
    rate = newcombe_diff(int(total[_T + col]), int(total[_T]), int(total[_H + col]),
                         int(total[_H]))  # fmt: skip
    stats = {
        "revenue_per_abandoned_cart": _rev_diff,
        "incremental_revenue": _incremental,
        "incremental_revenue_minus_coupon_cost": lambda s: _incremental(s) - s[_T + 6],
    }
    cis = bootstrap_cis(sums, stats, resamples=resamples, seed=seed)
    out["difference"] = {
        "recovery_rate": rate.as_dict(),
        **{name: ci.as_dict(2 if name.startswith("incremental") else 4) for name, ci in cis.items()},
    }
    out["method"] = (
        f"{units_of}: Wilson per arm, Newcombe difference; revenue differences by percentile "
        f"bootstrap over {units_of} ({resamples} resamples)"
    )
    return out


def _rev_diff(s: np.ndarray) -> float:
    return float(s[_T + 4] / s[_T + 1] - s[_H + 4] / s[_H + 1])


def _incremental(s: np.ndarray) -> float:
    """Treatment revenue minus what its carts would have made at the holdout's rate."""
    return float(s[_T + 4] - s[_T + 1] * s[_H + 4] / s[_H + 1])
