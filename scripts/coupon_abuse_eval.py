"""Coupon-abuse flags, measured offline on the synthetic shop with planted coupon farmers.

Runs the pure core (policies/coupon_abuse.py with the HalfSpaceTrees detector of
learning/anomaly.py, prequential: each scoring moment is scored, then learned) over
``generate(..., farmer_share, coupon_share)`` and prints, per customer, how many farmers
were flagged and how many known-normal customers were flagged too, next to the simple
rules at the same scoring moments (a customer counts as flagged by a rule the first time
its features meet it). One JSON object per line; the last is the summary.

.venv/bin/python scripts/coupon_abuse_eval.py --events 200000 --customers 5000 --farmer-share 0.02
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import orjson

from streamcrm.events import decode
from streamcrm.learning.anomaly import AnomalyDetector
from streamcrm.policies import coupon_abuse as abuse
from streamcrm.synthetic import generate

Rule = Callable[[dict[str, float]], bool]


def rules() -> dict[str, Rule]:
    out: dict[str, Rule] = {}
    for k in (2, 3, 4, 5, 6, 8):
        out[f"abandoned_7d>={k}"] = lambda x, k=k: x["abandoned_carts_7d"] >= k
        out[f"abandoned_7d>={k}&coupon_7d>=1"] = (
            lambda x, k=k: x["abandoned_carts_7d"] >= k and x["coupon_redemptions_7d"] >= 1
        )
    for k in (1, 2, 3):
        out[f"coupon_7d>={k}"] = lambda x, k=k: x["coupon_redemptions_7d"] >= k
    out["coupon_cancel_30d>=1"] = lambda x: x["cancels_after_coupon_30d"] >= 1
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    cfg = abuse.AbuseConfig(threshold=args.threshold)
    det = AnomalyDetector(seed=args.seed)
    states: dict[str, abuse.AbuseState | None] = {}
    max_score: dict[str, float] = {}
    flagged: set[str] = set()
    by_rule: dict[str, set[str]] = {name: set() for name in rules()}
    checks = rules()
    for record in generate(args.events, seed=args.seed, customers=args.customers,
                           farmer_share=args.farmer_share, coupon_share=args.coupon_share):  # fmt: skip
        event = decode(record.value, topic_kind=record.topic_kind, key=record.key)
        state = states.get(event.customer_id)
        if (at := abuse.due(state, cfg)) is not None and at <= event.ts:
            state, _, _ = abuse.on_due(state, event.ts, cfg)
        state, emitted, outcomes = abuse.on_event(state, event, cfg, scorer=det)
        states[event.customer_id] = state
        if emitted:
            flagged.add(event.customer_id)
        if "abuse_scoring_moment" in outcomes:
            x = abuse.features(state, event.ts, cfg)
            if det.ready:
                score = det.score_one(x)
                max_score[event.customer_id] = max(score, max_score.get(event.customer_id, 0.0))
                for name, check in checks.items():
                    if check(x):
                        by_rule[name].add(event.customer_id)
            det.learn_one(x)
    scored = set(max_score)
    farmers = {c for c in scored if c.startswith("f")}
    normal = scored - farmers

    def readout(hit: set[str]) -> dict[str, Any]:
        return {
            "farmers_flagged": len(hit & farmers),
            "farmer_recall": round(len(hit & farmers) / max(len(farmers), 1), 4),
            "normal_flagged": len(hit & normal),
            "false_flag_rate": round(len(hit & normal) / max(len(normal), 1), 5),
        }

    sweep = {f"{t:.2f}": readout({c for c, s in max_score.items() if s >= t})
             for t in (0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)}  # fmt: skip
    for name, hit in sorted(by_rule.items()):
        print(orjson.dumps({"rule": name, **readout(hit)}).decode())
    for t, row in sweep.items():
        print(orjson.dumps({"hst_threshold": t, **row}).decode())
    return {
        "events": args.events, "customers": args.customers, "farmer_share": args.farmer_share,
        "coupon_share": args.coupon_share, "farmers_scored": len(farmers),
        "normal_scored": len(normal), "threshold": args.threshold,
        "hst": readout(flagged & scored), "flags_emitted": len(flagged),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--farmer-share", type=float, default=0.02)
    parser.add_argument("--coupon-share", type=float, default=0.08)
    parser.add_argument("--threshold", type=float, default=abuse.AbuseConfig().threshold)
    parser.add_argument("--seed", type=int, default=7)
    print(orjson.dumps(run(parser.parse_args())).decode())


if __name__ == "__main__":
    main()
