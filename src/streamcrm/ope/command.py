"""``streamcrm evaluate-policy --format obd DIR``: off-policy estimates checked against a
policy's own logged CTR (``--format decisions FILE``: the offers' exposure log,
:mod:`streamcrm.ope.decisions_command`).

From the uniform-random log (``DIR/random/all.csv``) only, estimate the CTR of: BTS (its
per-position item distribution measured in ``DIR/bts/all.csv``), uniform random, and a
popularity list (the 10 items with the most clicks in the BTS log). BTS's own CTR in its log
is the check: each estimator's CI should cover it, and its relative error is reported.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from streamcrm.ope.evaluate import evaluate_policies
from streamcrm.ope.obd import (
    Log,
    empirical_policy,
    popularity_policy,
    read_item_context,
    read_log,
    uniform_policy,
)
from streamcrm.stats.intervals import wilson


class EvaluateUsageError(ValueError):
    """What was wrong with the command line or the input (one line for the user)."""


def add_evaluate_policy_parser(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate-policy", help="estimate other policies' value from logged bandit feedback"
    )
    p.add_argument(
        "dir",
        metavar="PATH",
        help="obd: the folder with random/all.csv, bts/all.csv, item_context.csv; "
        "decisions: a replay's --decisions-out file",
    )
    p.add_argument("--format", required=True, choices=["obd", "decisions"], help="the logs' format")
    p.add_argument(
        "--by", choices=["item", "slot"], default="item",
        help="decisions: weight each shown SKU by its chance of being in the list (item, "
        "default: a SKU's reward must not depend on its slot) or each slot by its own (slot)",
    )  # fmt: skip
    p.add_argument(
        "--population", choices=["all", "rewarded"], default="all",
        help="decisions: every closed offer (default) or only those followed by a cart add or "
        "order while current (the moments hit@5 is measured at; in replays only)",
    )  # fmt: skip
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap and cross-fitting seed")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")


def run_evaluate_policy(args: argparse.Namespace) -> int:
    if args.resamples < 100:
        msg = f"--resamples must be at least 100 (got {args.resamples})"
        raise EvaluateUsageError(msg)
    if args.format == "decisions":
        return _run_decisions(args)
    root = Path(args.dir)
    random_log = _read(root / "random" / "all.csv")
    bts_log = _read(root / "bts" / "all.csv")
    context = root / "random" / "item_context.csv"
    try:
        with context.open(encoding="utf-8", newline="") as handle:
            items = read_item_context(handle, str(context))
    except ValueError as exc:
        raise EvaluateUsageError(str(exc)) from None
    figures = obd_figures(random_log, bts_log, items, resamples=args.resamples, seed=args.seed)
    figures["dir"] = str(root)
    _print_table(figures)
    if args.json:
        print(json.dumps(figures), flush=True)
    return 0


def _run_decisions(args: argparse.Namespace) -> int:
    from streamcrm.ope import decisions_command

    try:
        log = decisions_command.read(Path(args.dir))
        figures = decisions_command.decisions_figures(
            log, by=args.by, population=args.population, resamples=args.resamples, seed=args.seed
        )
    except ValueError as exc:
        raise EvaluateUsageError(str(exc)) from None
    figures["file"] = args.dir
    decisions_command.print_table(figures)
    if args.json:
        print(json.dumps(figures), flush=True)
    return 0


def obd_figures(
    random_log: Log,
    bts_log: Log,
    items: dict[int, dict[str, float]],
    *,
    resamples: int,
    seed: int,
) -> dict[str, Any]:
    policies = {
        "bts": empirical_policy(bts_log),
        "uniform": uniform_policy(random_log.items, random_log.positions),
        "popularity": popularity_policy(bts_log, random_log.positions),
    }
    # On-policy CTRs where the policy ran: BTS in its own log, uniform in the random log.
    truth = {
        "bts": wilson(sum(bts_log.clicks), len(bts_log)),
        "uniform": wilson(sum(random_log.clicks), len(random_log)),
    }
    estimates, calibration = evaluate_policies(
        random_log, policies, items, resamples=resamples, seed=seed
    )
    out: dict[str, Any] = {}
    for name, by_estimator in estimates.items():
        body: dict[str, Any] = {}
        if name in truth:
            body["on_policy_ctr"] = truth[name].as_dict()
        for estimator, ci in by_estimator.items():
            entry: dict[str, Any] = ci.as_dict()
            if name in truth:
                actual = truth[name].estimate
                entry["covers_on_policy_ctr"] = ci.covers(actual)
                entry["relative_error"] = round(abs(ci.estimate - actual) / actual, 4)
            body[estimator] = entry
        out[name] = body
    return {
        "logged_impressions": len(random_log),
        "logged_clicks": sum(random_log.clicks),
        "bts_impressions": len(bts_log),
        "bts_clicks": sum(bts_log.clicks),
        "bootstrap": f"percentile, {resamples} resamples over impressions, seed {seed}",
        "reward_model": {
            "kind": "River StandardScaler|LogisticRegression on position and item features, "
            "2-fold cross-fitted, 3 passes",
            **calibration,
        },
        "policies": out,
    }


def _read(path: Path) -> Log:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return read_log(handle, str(path))
    except FileNotFoundError:
        msg = f"{path} not found: give the Open Bandit Dataset folder (random/ and bts/ in it)"
        raise EvaluateUsageError(msg) from None
    except ValueError as exc:
        raise EvaluateUsageError(str(exc)) from None


def _print_table(figures: dict[str, Any]) -> None:
    def say(text: str) -> None:
        print(text, file=sys.stderr)

    say("policy      estimator  estimate   95% CI               on-policy  covers  rel.err")
    for name, body in figures["policies"].items():
        actual = body.get("on_policy_ctr", {}).get("estimate")
        for estimator in ("ips", "snips", "dr"):
            e = body[estimator]
            tail = (
                f"  {actual:.5f}  {e['covers_on_policy_ctr']!s:<6}  {e['relative_error']:.3f}"
                if actual is not None
                else "  -"
            )
            say(
                f"{name:<10}  {estimator:<9}  {e['estimate']:.5f}  "
                f"[{e['ci_low']:.5f}, {e['ci_high']:.5f}]{tail}"
            )
