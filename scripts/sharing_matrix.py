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
import math
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from streamcrm.decisions import CrmConfig
from streamcrm.replay.adapters import Mapped, map_rows
from streamcrm.replay.runner import Workers, replay
from streamcrm.sharing.exchange import Exchange
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


SHARING_CPU = [0.0]
_tick = Exchange.tick


def timed_tick(self: Exchange, learners: Any, now: float) -> None:
    """Exchange.tick, its CPU time counted (exports, encoding, merges: the sharing cost)."""
    started = time.process_time()
    _tick(self, learners, now)
    SHARING_CPU[0] += time.process_time() - started


Exchange.tick = timed_tick  # type: ignore[method-assign]


def run(mapped: list[Mapped], workers: Workers) -> dict[str, Any]:
    """One replay. The simulated workers run one after another in this process, so its
    events per CPU second is the mean per-worker throughput (each worker's own events
    over its own busy time, summed over workers), the figure to compare with one worker."""
    SHARING_CPU[0] = 0.0
    started, cpu = time.perf_counter(), time.process_time()
    outcome = replay(mapped, crm=CrmConfig(), workers=workers)
    summary = outcome.summary()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    row = {k: summary.get(k) for k in KEYS}
    row |= {"segment_shares": summary["segment_shares"], "sharing": summary["cluster"]["sharing"],
            "elapsed_s": round(elapsed, 2), "cpu_s": round(cpu, 2),
            "events_per_cpu_s": round(summary["events"] / cpu),
            "sharing_cpu_share": round(SHARING_CPU[0] / cpu, 3),
            "_hits": {c: ["model_hit_at_5" in e for e in evs] for c, evs in outcome.evaluations.items()}}  # fmt: skip
    return row


def mcnemar(a: dict[str, list[bool]], b: dict[str, list[bool]]) -> dict[str, Any]:
    """Paired on the same evaluation moments (each customer's k-th evaluated offer):
    hits only in ``a``, only in ``b``, and the exact two-sided McNemar p-value."""
    only_a = only_b = 0
    for customer, hits in a.items():
        for x, y in zip(hits, b.get(customer, []), strict=False):
            only_a += x and not y
            only_b += y and not x
    n, k = only_a + only_b, min(only_a, only_b)
    p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n) if n else 1.0
    return {"hits_only_1_worker": only_a, "hits_only_n_workers": only_b, "p": round(p, 4)}


def bench(mapped: list[Mapped], rounds: int, every: float) -> dict[str, Any]:
    """Per-worker throughput (events per CPU second; see :func:`run`), the contenders
    interleaved so a change in the machine's load hits all alike; the best round each."""
    contenders = {"1_off": Workers(1, 8), "2_off": Workers(2, 8), "2_on": Workers(2, 8, every)}
    best: dict[str, dict[str, Any]] = {}
    for _ in range(rounds):
        for name, workers in contenders.items():
            row = run(mapped, workers)
            if name not in best or row["events_per_cpu_s"] > best[name]["events_per_cpu_s"]:
                best[name] = row
    one = best["1_off"]["events_per_cpu_s"]
    return {name: {"events_per_cpu_s": r["events_per_cpu_s"],
                   "vs_1_worker": round(r["events_per_cpu_s"] / one, 3),
                   "sharing_cpu_share": r["sharing_cpu_share"],
                   "delta_bytes_per_event": (r["sharing"] or {}).get("delta_bytes_per_event")}
            for name, r in best.items()}  # fmt: skip


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
    parser.add_argument("--bench", type=int, default=0, metavar="ROUNDS",
                        help="only throughput: 1 worker vs 2 (off, on), interleaved, best of ROUNDS")  # fmt: skip
    args = parser.parse_args()
    mapped = load(args)
    if args.bench:
        print(orjson.dumps(bench(mapped, args.bench, args.every)).decode())
        return
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
        cpu_1 = one["off"]["events_per_cpu_s"]
        row["throughput_per_worker_vs_1_worker"] = round(row["events_per_cpu_s"] / cpu_1, 3)
        row["paired_vs_1_worker_off"] = mcnemar(one["off"]["_hits"], row["_hits"])
        row["segment_pp_vs_1_worker"] = gap(row["segment_shares"], one[sharing]["segment_shares"])
        row["segment_pp_vs_1_worker_off"] = gap(row["segment_shares"], one["off"]["segment_shares"])
    for row in runs.values():
        del row["_hits"]
    print(orjson.dumps(runs).decode())


if __name__ == "__main__":
    main()
