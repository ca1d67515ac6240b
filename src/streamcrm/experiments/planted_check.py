"""``streamcrm planted-check``: the lift readout and the uplift policy against a planted truth.

Per seed, the closed-loop shop of :mod:`streamcrm.experiments.planted` (coupons on carts of
the planted segment raise recovery by a known amount) runs twice on the same traffic: with
the coupon rule (and once more without the plant, for the truth), and with
``coupon.targeting = "uplift"``. Printed as one JSON object: per seed the planted truth, the
readout with its 95% CI per cart and per customer and whether the CI covers the truth, the
share of incentive coupons that went to the planted segment, and the incremental revenue
minus coupon cost, for the rule and for uplift targeting; then the same over the seeds
(coverage, mean error of the readout, mean shares and the paired difference in net).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from statistics import mean, stdev
from typing import Any

from streamcrm.decisions import CrmConfig
from streamcrm.experiments.planted import run_planted
from streamcrm.policies.contact import ContactConfig

DAY = 86_400.0
UNITS = ("cart", "customer")


class PlantedUsageError(ValueError):
    """What was wrong with the command line (one line for the user)."""


@dataclass(frozen=True, slots=True)
class Shop:
    """The check's shop: the traffic, the plant and the policy's knobs."""

    events: int = 60_000
    customers: int = 1500
    lift: float = 0.3
    min_value: float = 100.0
    holdout: float = 0.5
    window_days: float = 2.0
    min_per_arm: int = 100
    explore_share: float = 0.1
    resamples: int = 500

    def crm(self) -> CrmConfig:
        crm = CrmConfig(contact=ContactConfig(holdout_share=self.holdout))
        ab = crm.abandon
        targeting = replace(ab.targeting, min_per_arm=self.min_per_arm,
                            explore_share=self.explore_share)  # fmt: skip
        ab = replace(ab, attribution_window=self.window_days * DAY, targeting=targeting)
        return replace(crm, abandon=ab)


def add_planted_parser(sub: Any) -> None:
    p = sub.add_parser(
        "planted-check",
        help="plant a known coupon effect in the synthetic shop; check the lift readout and "
        "the uplift policy against it",
    )
    d = Shop()
    p.add_argument("--seeds", default="1,2,3", help="comma-separated seeds (default 1,2,3)")
    p.add_argument("--events", type=int, default=d.events, help=f"events per run ({d.events})")
    p.add_argument("--customers", type=int, default=d.customers, help=f"({d.customers})")
    p.add_argument("--lift", type=float, default=d.lift,
                   help=f"P(order) a coupon adds on a cart of the segment ({d.lift})")  # fmt: skip
    p.add_argument("--min-value", type=float, default=d.min_value,
                   help=f"the segment: carts worth this or more ({d.min_value})")  # fmt: skip
    p.add_argument("--holdout", type=float, default=d.holdout, help=f"holdout share ({d.holdout})")
    p.add_argument("--window-days", type=float, default=d.window_days,
                   help=f"attribution window in days ({d.window_days})")  # fmt: skip
    p.add_argument("--min-per-arm", type=int, default=d.min_per_arm,
                   help=f"resolved carts per arm before the learner decides ({d.min_per_arm})")  # fmt: skip
    p.add_argument("--explore-share", type=float, default=d.explore_share,
                   help=f"share of refusals still given the coupon ({d.explore_share})")  # fmt: skip
    p.add_argument("--resamples", type=int, default=d.resamples, help="bootstrap resamples")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (processes; default 1)")


def run_planted_check(args: argparse.Namespace) -> int:
    seeds, shop = _seeds(args.seeds), _shop(args)
    if args.jobs < 1:
        raise PlantedUsageError(f"--jobs must be 1 or more (got {args.jobs})")
    out = planted_check(seeds, shop, jobs=args.jobs, progress=True)
    print(json.dumps(out), flush=True)
    return 0


def planted_check(
    seeds: Sequence[int], shop: Shop, *, jobs: int = 1, progress: bool = False
) -> dict[str, Any]:
    """Every seed's figures and their summary; ``progress``: each seed's table row on
    stderr as soon as its two runs are done (a long check shows what it has so far)."""
    tasks = [(seed, policy, shop) for seed in seeds for policy in ("rule", "uplift")]
    margin = shop.crm().abandon.targeting.margin
    per_seed: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=jobs) if jobs > 1 else _Inline() as pool:
        runs = pool.map(_run, tasks)
        for seed in seeds:
            per_seed.append(seed_figures(seed, next(runs), next(runs), margin))
            if progress:
                _print_rows(per_seed[-1:], header=len(per_seed) == 1)
    return {"shop": _shop_dict(shop), "seeds": list(seeds), "per_seed": per_seed,
            "summary": summarise(per_seed)}  # fmt: skip


class _Inline:
    """In this process, lazily: the one-job stand-in for the process pool."""

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def map(self, fn: Any, tasks: Sequence[Any]) -> Any:
        return (fn(task) for task in tasks)


def _run(task: tuple[int, str, Shop]) -> dict[str, Any]:
    seed, policy, shop = task
    return run_planted(
        shop.events, seed=seed, customers=shop.customers, lift=shop.lift,
        min_value=shop.min_value, targeting=policy == "uplift", crm=shop.crm(),
        resamples=shop.resamples, truth=policy == "rule",
    )  # fmt: skip


def seed_figures(
    seed: int, rule: dict[str, Any], uplift: dict[str, Any], margin: float
) -> dict[str, Any]:
    """One seed: the truth and the rule run's readout; both policies' coupons and net."""
    readout: dict[str, Any] = {}
    for unit in UNITS:
        readout[unit] = {
            "truth": rule[f"planted_itt_per_{unit}"],
            "readout": rule["lift"][unit].get("difference", {}).get("recovery_rate"),
            "covers": rule[f"readout_covers_planted_per_{unit}"],
        }
    return {
        "seed": seed,
        "planted_orders": rule["planted_orders"],
        "recovery_rate_difference": readout,
        "rule": _policy(rule, margin),
        "uplift": _policy(uplift, margin),
    }


def _policy(run: dict[str, Any], margin: float) -> dict[str, Any]:
    diff = run["lift"]["customer"].get("difference", {})
    net, revenue = (
        diff.get("incremental_revenue_minus_coupon_cost"),
        diff.get("incremental_revenue"),
    )
    cost = run["lift"]["customer"]["treatment"]["coupon_cost"]
    decided = run["incentive_decisions_by_targeting"]
    refused = decided.get("explore", 0) + decided.get("uplift_refused", 0)
    return {
        "incentive_coupons": run["incentive_coupons"],
        "coupons_in_segment_share": run["coupons_in_segment_share"],
        "coupons_in_segment_share_learner": run["coupons_in_segment_share_learner"],
        "coupon_cost": cost,
        "incremental_revenue": revenue,
        "incremental_revenue_minus_coupon_cost": net,
        # What the uplift gate weighs: the margin on the incremental revenue, minus the cost.
        "incremental_margin_minus_coupon_cost": round(margin * revenue["estimate"] - cost, 2)
        if revenue
        else None,
        "incentive_decisions_by_targeting": decided,
        # Of the coupons the learner would refuse, the share given anyway (explore_share).
        "explored_share_of_refusals": round(decided.get("explore", 0) / refused, 4)
        if refused
        else None,
    }


def summarise(per_seed: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Coverage and the readout's mean error per unit; shares and net per policy, paired."""
    out: dict[str, Any] = {"seeds": len(per_seed)}
    for unit in UNITS:
        rows = [s["recovery_rate_difference"][unit] for s in per_seed]
        rows = [r for r in rows if r["truth"] is not None and r["readout"]]
        errors = [r["readout"]["estimate"] - r["truth"] for r in rows]
        out[unit] = {
            "covered": sum(1 for r in rows if r["covers"]), "of": len(rows),
            "mean_truth": _mean([r["truth"] for r in rows]),
            "mean_readout": _mean([r["readout"]["estimate"] for r in rows]),
            "mean_error": _mean(errors),
            "error_standard_error": round(stdev(errors) / len(errors) ** 0.5, 6)
            if len(errors) > 1 else None,
        }  # fmt: skip
    for policy in ("rule", "uplift"):
        runs = [s[policy] for s in per_seed]
        out[policy] = {
            "mean_coupons_in_segment_share": _mean([r["coupons_in_segment_share"] for r in runs]),
            "mean_coupons_in_segment_share_learner": _mean(
                [r["coupons_in_segment_share_learner"] for r in runs]
            ),
            "mean_incremental_revenue_minus_coupon_cost": _mean([_net(r) for r in runs]),
            "mean_incremental_margin_minus_coupon_cost": _mean(
                [r["incremental_margin_minus_coupon_cost"] for r in runs]
            ),
            "mean_coupon_cost": _mean([r["coupon_cost"] for r in runs]),
        }
    for name, of in (("revenue", _net), ("margin", _margin)):
        pairs = [(of(s["uplift"]), of(s["rule"])) for s in per_seed]
        gains = [u - r for u, r in pairs if u is not None and r is not None]
        out[f"net_{name}_uplift_minus_rule"] = {
            "mean": _mean(gains), "seeds_better": sum(1 for g in gains if g > 0), "of": len(gains),
        }  # fmt: skip
    return out


def _margin(policy: dict[str, Any]) -> float | None:
    value = policy["incremental_margin_minus_coupon_cost"]
    return None if value is None else float(value)


def _net(policy: dict[str, Any]) -> float | None:
    net = policy["incremental_revenue_minus_coupon_cost"]
    return None if net is None else float(net["estimate"])


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return round(mean(kept), 6) if kept else None


def _shop(args: argparse.Namespace) -> Shop:
    shop = Shop(
        events=args.events, customers=args.customers, lift=args.lift, min_value=args.min_value,
        holdout=args.holdout, window_days=args.window_days, min_per_arm=args.min_per_arm,
        explore_share=args.explore_share, resamples=args.resamples,
    )  # fmt: skip
    problems = [
        f"--{name} must be {rule} (got {value})"
        for name, value, ok, rule in (
            ("events", shop.events, shop.events >= 100, "100 or more"),
            ("customers", shop.customers, shop.customers >= 10, "10 or more"),
            ("lift", shop.lift, 0.0 <= shop.lift <= 1.0, "in [0, 1]"),
            ("holdout", shop.holdout, 0.0 < shop.holdout < 1.0, "above 0 and below 1"),
            ("window-days", shop.window_days, shop.window_days > 0, "above 0"),
            ("min-per-arm", shop.min_per_arm, shop.min_per_arm >= 1, "1 or more"),
            ("explore-share", shop.explore_share, 0.0 <= shop.explore_share <= 1.0, "in [0, 1]"),
            ("resamples", shop.resamples, shop.resamples >= 10, "10 or more"),
            ("min-value", shop.min_value, shop.min_value > 0, "above 0"),
        )
        if not ok
    ]
    if problems:
        raise PlantedUsageError(problems[0])
    return shop


def _shop_dict(shop: Shop) -> dict[str, Any]:
    return {name: getattr(shop, name) for name in Shop.__slots__}


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        msg = f"--seeds {text!r}: give comma-separated integers, e.g. --seeds 1,2,3"
        raise PlantedUsageError(msg) from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise PlantedUsageError("--seeds: give one or more distinct seeds, e.g. --seeds 1,2,3")
    return seeds


def _num(value: float | None) -> float:
    return float("nan") if value is None else value


def _print_rows(per_seed: Sequence[dict[str, Any]], *, header: bool) -> None:
    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    if header:
        say("seed  truth/cart  readout/cart [95% CI]       covers  share rule  share uplift"
            "  net rule  net uplift")  # fmt: skip
    for s in per_seed:
        c = s["recovery_rate_difference"]["cart"]
        r = c["readout"] or {}
        est, low, high = (_num(r.get(k)) for k in ("estimate", "ci_low", "ci_high"))
        shares = [_num(s[p]["coupons_in_segment_share"]) for p in ("rule", "uplift")]
        nets = [_num(_net(s[p])) for p in ("rule", "uplift")]
        say(
            f"{s['seed']:>4}  {_num(c['truth']):>10.4f}  {est:>7.4f} [{low:.4f}, {high:.4f}]"
            f"  {c['covers']!s:>6}  {shares[0]:>10.3f}  {shares[1]:>12.3f}  "
            f"{nets[0]:>8.0f}  {nets[1]:>10.0f}"
        )
