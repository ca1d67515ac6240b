"""``streamcrm evaluate-policy --format decisions FILE``: the value of other offer rankings,
estimated from the exposure log a replay wrote (``streamcrm replay --decisions-out FILE``).

Value = expected shown SKUs the customer adds to the cart or buys next (within the offer's
window, while it is their latest), per offer. Every policy is checked against its replay
truth (see :mod:`streamcrm.ope.slates`), the logging policy also against its observed value.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from streamcrm.ope.exposure import ExposureLog, read_decisions
from streamcrm.ope.slates import evaluate_slates, on_policy, relative_error
from streamcrm.stats.intervals import Interval


def read(path: Path) -> ExposureLog:
    """The joined log; ``ValueError`` (one line) if it cannot be read."""
    try:
        with path.open("rb") as handle:
            return read_decisions(handle, str(path))
    except FileNotFoundError:
        msg = f"{path} not found: give a replay's --decisions-out file"
        raise ValueError(msg) from None


def decisions_figures(
    log: ExposureLog, *, by: str, population: str, resamples: int, seed: int
) -> dict[str, Any]:
    offers = [o for o in log.offers if population == "all" or o.rewarded]
    estimates, calibration = evaluate_slates(offers, by=by, resamples=resamples, seed=seed)
    observed = on_policy(offers)
    policies: dict[str, Any] = {}
    for name, body in estimates.items():
        truth = float(body["replay_truth"])  # type: ignore[arg-type]
        entry: dict[str, Any] = {
            "replay_truth": round(truth, 6),
            "max_weight": round(float(body["max_weight"]), 3),  # type: ignore[arg-type]
        }
        if name == "logged":
            entry["on_policy"] = round(observed, 6)
        for estimator in ("ips", "snips", "dr"):
            ci = body[estimator]
            assert isinstance(ci, Interval)
            entry[estimator] = {
                **ci.as_dict(),
                "covers_replay_truth": ci.covers(truth),
                "relative_error": relative_error(ci.estimate, truth),
            }
            if name == "logged":
                entry[estimator]["covers_on_policy"] = ci.covers(observed)
        policies[name] = entry
    return {
        "offers": len(offers),
        "offers_rewarded": sum(o.rewarded for o in offers),
        "offers_open_at_end": log.open_offers,
        "offers_without_exposure": log.without_exposure,
        "customers": len({o.customer_id for o in offers}),
        "value": "shown SKUs added to the cart or bought next, per offer",
        "population": population,
        "weights_by": by,
        "bootstrap": f"percentile, {resamples} resamples over customers, seed {seed}",
        "reward_model": {
            "kind": "River StandardScaler|LogisticRegression on slot and exposure features, "
            "2-fold cross-fitted over offers, 3 passes",
            **calibration,
        },
        "policies": policies,
    }


def print_table(figures: dict[str, Any]) -> None:
    def say(text: str) -> None:
        print(text, file=sys.stderr)

    say(
        f"{figures['offers']} offers ({figures['offers_rewarded']} rewarded), "
        f"{figures['customers']} customers; weights by {figures['weights_by']}"
    )
    say("policy      estimator  estimate   95% CI                replay truth  covers  rel.err")
    for name, body in figures["policies"].items():
        truth = body["replay_truth"]
        for estimator in ("ips", "snips", "dr"):
            e = body[estimator]
            err = e["relative_error"]
            say(
                f"{name:<10}  {estimator:<9}  {e['estimate']:.5f}  "
                f"[{e['ci_low']:.5f}, {e['ci_high']:.5f}]  {truth:.5f}       "
                f"{e['covers_replay_truth']!s:<6}  {'-' if err is None else f'{err:.3f}'}"
            )
    logged = figures["policies"].get("logged")
    if logged is not None:
        say(f"logging policy observed on-policy: {logged['on_policy']:.5f}")
