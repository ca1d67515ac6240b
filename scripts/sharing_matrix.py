"""Offer hit rates and RFM segment shares for N simulated workers, sharing off and on.

    .venv/bin/python scripts/sharing_matrix.py --format taobao FILE
    .venv/bin/python scripts/sharing_matrix.py --events 30000 --customers 3000

Runs the in-memory replay (``streamcrm replay --workers N --sharing off|on``) for each N
and prints one JSON object: per run the offer metrics, segment shares, sharing traffic
and delay, and the ratio of hit@5 to the one-worker run; the largest segment-share
difference (percentage points) from one worker (sharing off: today's P-square cut
points; on: the KLL sketch).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from streamcrm.decisions import CrmConfig
from streamcrm.replay.adapters import Mapped, map_rows
from streamcrm.replay.runner import Workers, replay
from streamcrm.synthetic import generate

KEYS = ("offer_hit_rate_at_5", "offer_hit_rate_at_10", "offers_evaluated",
        "baseline_hit_rate_at_5", "ranker_hit_rate_at_5", "offer_vs_best_baseline")  # fmt: skip


def load(args: argparse.Namespace) -> list[Mapped]:
    if args.format:
        mapped, _ = map_rows(args.format, Path(args.file).read_text().splitlines())
        return mapped
    from datetime import datetime

    out = []
    for r in generate(args.events, seed=7, customers=args.customers, skus=args.skus):
        ts = datetime.fromisoformat(orjson.loads(r.value)["ts"].replace("Z", "+00:00"))
        out.append(Mapped(ts.timestamp(), r.topic_kind, r.key, r.value))
    return out


def run(mapped: list[Mapped], workers: Workers) -> dict[str, Any]:
    started = time.perf_counter()
    summary = replay(mapped, crm=CrmConfig(), workers=workers).summary()
    elapsed = time.perf_counter() - started
    row = {k: summary.get(k) for k in KEYS}
    row |= {"segment_shares": summary["segment_shares"], "sharing": summary["cluster"]["sharing"],
            "elapsed_s": round(elapsed, 2), "events_per_s": round(summary["events"] / elapsed)}  # fmt: skip
    return row


def gap(a: dict[str, float], b: dict[str, float]) -> float:
    return round(100 * max(abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in {*a, *b}), 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--format")
    parser.add_argument("file", nargs="?")
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--customers", type=int, default=3_000)
    parser.add_argument("--skus", type=int, default=2_000)
    parser.add_argument("--workers", default="1,2,4,8")
    parser.add_argument("--every", type=float, default=60.0)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    mapped = load(args)
    runs: dict[str, Any] = {}
    for sharing in ("off", "on"):
        for n in (int(w) for w in args.workers.split(",")):
            every = args.every if sharing == "on" else None
            runs[f"{n}_{sharing}"] = run(mapped, Workers(n, 8, every, args.delay))
            print(f"{n} workers, sharing {sharing}: {runs[f'{n}_{sharing}']['offer_hit_rate_at_5']}",
                  file=sys.stderr, flush=True)  # fmt: skip
    one = {s: runs[f"1_{s}"] for s in ("off", "on")}
    for key, row in runs.items():
        sharing = key.split("_")[1]
        base = one[sharing]["offer_hit_rate_at_5"]
        row["hit5_vs_1_worker"] = round(row["offer_hit_rate_at_5"] / base, 4) if base else None
        row["hit5_vs_1_worker_off"] = (
            round(row["offer_hit_rate_at_5"] / one["off"]["offer_hit_rate_at_5"], 4)
            if one["off"]["offer_hit_rate_at_5"] else None
        )  # fmt: skip
        row["segment_pp_vs_1_worker"] = gap(row["segment_shares"], one[sharing]["segment_shares"])
        row["segment_pp_vs_1_worker_off"] = gap(row["segment_shares"], one["off"]["segment_shares"])
    print(orjson.dumps(runs).decode())


if __name__ == "__main__":
    main()
