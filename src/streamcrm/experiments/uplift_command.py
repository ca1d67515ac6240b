"""``streamcrm uplift --format hillstrom FILE``: the online uplift learner judged on a real
randomised campaign, next to the plain two-model baseline.

Per seed: shuffle the customers (seeded), stream the first half through each learner once,
rank the second half by predicted uplift and read the observed uplift among the top 10/30/50%
against the whole held-out half (``uplift_top30_vs_all``), and the Qini coefficient.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from statistics import mean
from typing import Any

import numpy as np

from streamcrm.experiments.hillstrom import (
    OUTCOMES,
    Customer,
    baseline_features,
    features,
    read_hillstrom,
)
from streamcrm.experiments.uplift_metrics import (
    Scored,
    observed_uplift,
    qini_coefficient,
    top_uplift,
)
from streamcrm.learning.uplift import TwoModelUplift
from streamcrm.stats.bootstrap import bootstrap_ci

Features = Callable[[Customer], dict[str, float]]
TOPS = (0.1, 0.3, 0.5)


class UpliftUsageError(ValueError):
    """What was wrong with the command line or the file (one line for the user)."""


# name -> (description, learning rate, features). The baseline is the reference.
LEARNERS: dict[str, tuple[str, float, Features]] = {
    "baseline": (
        "two-model StandardScaler|LogisticRegression, SGD 0.01, all columns, one pass",
        0.01,
        baseline_features,
    ),
    "uplift": (
        "TwoModelUplift, SGD 0.005, the five numeric pre-treatment columns, one pass",
        0.005,
        features,
    ),
}


def add_uplift_parser(sub: Any) -> None:
    p = sub.add_parser(
        "uplift", help="learn uplift online on a randomised campaign and evaluate it held out"
    )
    p.add_argument("file", help="the campaign file (hillstrom: the two-arm CSV)")
    p.add_argument("--format", required=True, choices=["hillstrom"], help="the file's format")
    p.add_argument(
        "--seeds", default="1,2,3", help="comma-separated shuffling seeds (default 1,2,3)"
    )
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")


def run_uplift(args: argparse.Namespace) -> int:
    seeds = _seeds(args.seeds)
    path = Path(args.file)
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            customers = read_hillstrom(handle, str(path))
    except ValueError as exc:
        raise UpliftUsageError(str(exc)) from None
    figures = uplift_figures(customers, seeds)
    figures["file"] = str(path)
    _print_table(figures)
    if args.json:
        print(json.dumps(figures), flush=True)
    return 0


def uplift_figures(customers: Sequence[Customer], seeds: Sequence[int]) -> dict[str, Any]:
    if len(customers) < 100:
        msg = f"{len(customers)} customers are too few to split in halves and rank (100 at least)"
        raise UpliftUsageError(msg)
    learners: dict[str, Any] = {}
    for name, (description, rate, make_x) in LEARNERS.items():
        per_seed = [_one_seed(customers, seed, rate, make_x) for seed in seeds]
        learners[name] = {
            "description": description,
            "per_seed": per_seed,
            "spread": _spread(per_seed),
        }
    return {
        "customers": len(customers),
        "treated": sum(1 for c in customers if c.treated),
        "control": sum(1 for c in customers if not c.treated),
        "itt": itt(customers),
        "seeds": list(seeds),
        "uplift_top30_vs_all": {
            name: [s["visit"]["uplift_top30_vs_all"] for s in body["per_seed"]]
            for name, body in learners.items()
        },
        "learners": learners,
    }


def itt(customers: Sequence[Customer]) -> dict[str, Any]:
    """Intent-to-treat effect of the e-mail on every outcome, with 95% CIs."""
    out: dict[str, Any] = {}
    for outcome in OUTCOMES:
        lift = observed_uplift([(c.treated, c.outcome(outcome)) for c in customers])
        nt = sum(1 for c in customers if c.treated)
        rate_t = sum(1 for c in customers if c.treated and c.outcome(outcome)) / nt
        out[outcome] = {
            "treated_rate": round(rate_t, 6),
            "control_rate": round(rate_t - lift.estimate, 6),
            "lift": lift.as_dict(),
            "method": "Newcombe hybrid score (Wilson) interval",
        }
    sums = np.array(
        [
            [c.spend * c.treated, c.treated, c.spend * (not c.treated), not c.treated]
            for c in customers
        ],
        dtype=float,
    )
    spend = bootstrap_ci(sums, lambda t: t[0] / t[1] - t[2] / t[3], resamples=2000, seed=0)
    out["spend_per_customer"] = {
        "lift": spend.as_dict(),
        "method": "percentile bootstrap over customers, 2000 resamples, seed 0",
    }
    return out


def _one_seed(
    customers: Sequence[Customer], seed: int, rate: float, features: Features
) -> dict[str, Any]:
    order = list(customers)
    random.Random(seed).shuffle(order)
    half = len(order) // 2
    train, test = order[:half], order[half:]
    result: dict[str, Any] = {"seed": seed}
    for outcome in OUTCOMES:
        learner = TwoModelUplift(learning_rate=rate, decay_after=None)
        for c in train:
            learner.learn_one(features(c), treated=c.treated, y=c.outcome(outcome))
        scored: list[Scored] = [
            (learner.predict_one(features(c)), c.treated, c.outcome(outcome)) for c in test
        ]
        result[outcome] = _readout(scored)
    return result


def _readout(scored: Sequence[Scored]) -> dict[str, Any]:
    overall = observed_uplift([(t, y) for _, t, y in scored])
    out: dict[str, Any] = {"uplift_all": overall.as_dict()}
    for top in TOPS:
        pct = round(top * 100)
        lift = top_uplift(scored, top)
        out[f"uplift_top{pct}"] = lift.as_dict()
        out[f"uplift_top{pct}_vs_all"] = round(lift.estimate / overall.estimate, 4)
    out["qini"] = round(qini_coefficient(scored), 4)
    return out


def _spread(per_seed: Sequence[dict[str, Any]]) -> dict[str, Any]:
    keys = ["uplift_top10_vs_all", "uplift_top30_vs_all", "uplift_top50_vs_all", "qini"]
    return {
        outcome: {
            key: {
                "min": min(s[outcome][key] for s in per_seed),
                "mean": round(mean(s[outcome][key] for s in per_seed), 4),
                "max": max(s[outcome][key] for s in per_seed),
            }
            for key in keys
        }
        for outcome in OUTCOMES
    }


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        msg = f"--seeds {text!r}: give comma-separated integers, e.g. --seeds 1,2,3"
        raise UpliftUsageError(msg) from None
    if not seeds:
        msg = "--seeds: give at least one seed, e.g. --seeds 1,2,3"
        raise UpliftUsageError(msg)
    return seeds


def _print_table(figures: dict[str, Any]) -> None:
    def say(text: str) -> None:
        print(text, file=sys.stderr)

    for outcome in OUTCOMES:
        body = figures["itt"][outcome]
        lift = body["lift"]
        say(
            f"ITT {outcome}: {body['treated_rate']:.4f} e-mailed vs {body['control_rate']:.4f}"
            f" not, lift {lift['estimate']:+.4f} (95% CI {lift['ci_low']:+.4f} .. {lift['ci_high']:+.4f})"
        )
    say("seed  outcome     learner   top10/all top30/all top50/all   qini")
    for i, seed in enumerate(figures["seeds"]):
        for outcome in OUTCOMES:
            for name, body in figures["learners"].items():
                r = body["per_seed"][i][outcome]
                say(
                    f"{seed:>4}  {outcome:<10}  {name:<8}  {r['uplift_top10_vs_all']:>9.3f}"
                    f" {r['uplift_top30_vs_all']:>9.3f} {r['uplift_top50_vs_all']:>9.3f}"
                    f" {r['qini']:>6.3f}"
                )
