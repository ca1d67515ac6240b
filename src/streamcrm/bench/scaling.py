"""How the decision core's cost grows with the catalogue.

``scaling()``: the in-memory :class:`~streamcrm.ingest.Processor` (every decision the
worker makes, no Kafka) over the same synthetic shop at 1,000 to 1,000,000 SKUs,
everything else equal (events, customers, seed); events/s, tracked SKUs and the
learners' memory at each point, and the ratio of the 1,000,000 figure to the 1,000 one.
Events are generated before the clock starts.

``instructions_per_event()``: the same core under callgrind (valgrind), machine-
independent: two runs that differ only in how many events they process, so start-up
(imports, generating the events) cancels out.

    python -m streamcrm.bench.scaling [--events N] [--callgrind]
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from streamcrm.decisions import CrmConfig, Learners
from streamcrm.ingest import Processor, Record
from streamcrm.replay.runner import KINDS
from streamcrm.state import CustomerState
from streamcrm.synthetic import generate

SIZES = (1_000, 10_000, 100_000, 1_000_000)
Batch = tuple[list[Record], float]


def workload(skus: int, events: int, customers: int, seed: int, batch: int = 100) -> list[Batch]:
    records = [
        (Record(r.topic_kind, 0, i, r.key, r.value), _ts(r.value))
        for i, r in enumerate(generate(events, seed=seed, customers=customers, skus=skus))
    ]
    out: list[Batch] = []
    latest = 0.0
    for start in range(0, len(records), batch):
        chunk = records[start : start + batch]
        latest = max(latest, *(ts for _, ts in chunk))
        out.append(([r for r, _ in chunk], latest))
    return out


def _ts(value: bytes) -> float:
    return datetime.fromisoformat(orjson.loads(value)["ts"].replace("Z", "+00:00")).timestamp()


def run_core(batches: list[Batch], processor: Processor | None = None) -> Processor:
    processor = processor or Processor(KINDS, crm=CrmConfig(), clock="event")
    table: dict[str, CustomerState] = {}
    for records, now in batches:
        for customer_id, (_, state) in processor.process(records, table.get, now).states.items():
            table[customer_id] = state
    return processor


def learner_bytes(learners: Learners) -> int:
    """The candidate statistics' containers, keys and values (the other learners are a
    few KB whatever the catalogue)."""
    stats = learners.candidates
    size = sys.getsizeof
    rank_of: dict[str, Any] = getattr(stats, "_rank_of", {})  # older code had no index
    total = sum(size(d) for d in (stats.popularity, stats.catalog, stats.cooc, rank_of))
    total += sum(size(k) + size(v) for k, v in stats.popularity.items())
    total += sum(size(v) for v in stats.catalog.values())
    total += sum(size(v) + size(v) // 2 for v in stats.cooc.values())  # + their float values
    total += sum(size(v) for v in rank_of.values()) + 72 * len(rank_of)  # + the sorted list
    return total


def scaling(
    *, events: int = 40_000, customers: int = 10_000, seed: int = 7, sizes: tuple[int, ...] = SIZES
) -> dict[str, Any]:
    rows = []
    for skus in sizes:
        batches = workload(skus, events, customers, seed)
        gc.collect()
        started = time.perf_counter()
        processor = run_core(batches)
        elapsed = time.perf_counter() - started
        rows.append({
            "skus": skus,
            "events_per_s": round(events / elapsed, 1),
            "tracked_skus": len(processor.learners.candidates.popularity),
            "learner_mb": round(learner_bytes(processor.learners) / 1e6, 1),
        })  # fmt: skip
    first, last = rows[0]["events_per_s"], rows[-1]["events_per_s"]
    return {"events": events, "customers": customers, "rows": rows,
            "ratio_last_to_first": round(last / first, 3)}  # fmt: skip


def instructions_per_event(
    *, skus: int = 100_000, customers: int = 10_000, warmup: int = 3_000, events: int = 1_000
) -> dict[str, Any] | None:
    """Instructions per event after ``warmup`` events, or None without valgrind."""
    if shutil.which("valgrind") is None:
        return None
    counts = []
    with tempfile.TemporaryDirectory(prefix="streamcrm-callgrind-") as tmp:
        for processed in (warmup, warmup + events):
            out = Path(tmp) / f"callgrind.{processed}"
            command = [
                "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                sys.executable, "-m", "streamcrm.bench.scaling", "--child",
                f"--skus={skus}", f"--customers={customers}",
                f"--generate={warmup + events}", f"--process={processed}",
            ]  # fmt: skip
            # One BLAS thread: scipy's idle OpenBLAS threads spin, and callgrind counts
            # their instructions too (-26,000 to +3,000 per event between runs).
            env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
            subprocess.run(command, check=True, capture_output=True, env=env)
            counts.append(_total(out.read_text(errors="replace")))
    return {"skus": skus, "warmup_events": warmup, "events": events,
            "instructions_per_event": round((counts[1] - counts[0]) / events)}  # fmt: skip


def table(figures: dict[str, Any]) -> list[str]:
    """The scaling figures as printed lines."""
    lines = [f"{'SKUs':>10} {'events/s':>9} {'tracked':>8} {'learner MB':>10}"]
    lines += [
        f"{r['skus']:>10,} {r['events_per_s']:>9,.0f} {r['tracked_skus']:>8,} {r['learner_mb']:>10}"
        for r in figures["rows"]
    ]
    lines.append(f"ratio {figures['rows'][-1]['skus']:,} / {figures['rows'][0]['skus']:,} SKUs: "
                 f"{figures['ratio_last_to_first']}")  # fmt: skip
    return lines


def _total(callgrind_out: str) -> int:
    match = re.search(r"^(?:summary|totals):\s+(\d+)", callgrind_out, re.MULTILINE)
    if match is None:
        msg = "no totals in the callgrind output"
        raise RuntimeError(msg)
    return int(match.group(1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m streamcrm.bench.scaling")
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--skus", type=int, default=100_000, help=argparse.SUPPRESS)
    parser.add_argument("--generate", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--process", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:  # under callgrind: the same events generated, some of them processed
        batches = workload(args.skus, args.generate, args.customers, seed=7)
        run_core(batches[: args.process // 100])
        return
    figures: dict[str, Any] = {"scaling": scaling(events=args.events, customers=args.customers)}
    if args.callgrind:
        figures["callgrind"] = instructions_per_event(customers=args.customers)
    sys.stdout.write(orjson.dumps(figures).decode() + "\n")


if __name__ == "__main__":
    main()
