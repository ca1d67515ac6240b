"""What price suggestions cost: Kafka bytes per input event, replay throughput, memory.

1. traffic: the synthetic shop's applied events through :class:`DemandDeltas` as the
   worker batches them (batches of ``--batch`` events in log order, customers split over
   ``--workers`` by Kafka's partitioner): delta records and bytes (key + value) per input
   event, and the pricing table's changelog (one state record per delta merged).
2. throughput: the in-memory replay of the same log with pricing off and on, alternated
   in one process (off, on, on, off, ...), events/s each.
3. memory: a table full of SKUs with every bucket of the window filled (tracemalloc).

.venv/bin/python scripts/pricing_cost.py --events 60000 --customers 5000 --skus 100000
"""

from __future__ import annotations

import argparse
import json
import random
import time
import tracemalloc
from typing import Any

import orjson

from streamcrm.crm_config import CrmConfig
from streamcrm.events import decode
from streamcrm.pricing.deltas import DemandDeltas
from streamcrm.pricing.suggest import PricingConfig
from streamcrm.pricing.table import SkuTable
from streamcrm.replay.adapters import Mapped
from streamcrm.replay.runner import replay, replay_order
from streamcrm.sharing.exchange import partition_for, worker_for
from streamcrm.synthetic import generate
from streamcrm.synthetic_demand import with_demand_shifts


def shop(args: argparse.Namespace) -> list[Mapped]:
    records = with_demand_shifts(
        generate(args.events, seed=args.seed, customers=args.customers, skus=args.skus),
        shifts=args.demand_shifts, seed=args.seed,
    )  # fmt: skip
    out = []
    for r in records:
        ts = decode(r.value, topic_kind=r.topic_kind, key=r.key).ts
        out.append(Mapped(ts, r.topic_kind, r.key, r.value))
    return replay_order(out)


def traffic(mapped: list[Mapped], batch: int, workers: int, partitions: int = 8) -> dict[str, Any]:
    cfg = PricingConfig()
    table = SkuTable(cfg.max_skus)
    records = delta_bytes = changelog_bytes = 0
    for start in range(0, len(mapped), batch):
        deltas = [DemandDeltas(cfg.demand.bucket_s) for _ in range(workers)]
        for m in mapped[start : start + batch]:
            w = worker_for(partition_for(m.key, partitions), workers)
            deltas[w].observe(decode(m.value, topic_kind=m.topic_kind, key=m.key))
        for d in deltas:
            for key, value in d.take():
                records += 1
                delta_bytes += len(key) + len(value)
                sku, rows = orjson.loads(value)["sku"], orjson.loads(value)["rows"]
                for ts, *counts in rows:
                    table.add_counts(sku, (counts[0], counts[1], counts[2]), ts, cfg)
                state = table.get(sku)
                if state is not None:
                    changelog_bytes += len(key) + len(orjson.dumps(state.to_dict()))
    n = len(mapped)
    return {
        "batch": batch, "workers": workers, "delta_records_per_event": round(records / n, 3),
        "delta_bytes_per_event": round(delta_bytes / n, 1),
        "changelog_bytes_per_event": round(changelog_bytes / n, 1),
        "mean_delta_bytes": round(delta_bytes / max(records, 1), 1),
    }  # fmt: skip


def throughput(mapped: list[Mapped], rounds: int) -> dict[str, Any]:
    rates: dict[str, list[float]] = {"off": [], "on": []}
    suggestions = 0
    order = [("off", "on") if i % 2 == 0 else ("on", "off") for i in range(rounds)]
    for pair in order:
        for mode in pair:
            started = time.perf_counter()
            outcome = replay(mapped, crm=CrmConfig(), pricing=mode == "on")
            rates[mode].append(round(len(mapped) / (time.perf_counter() - started), 1))
            if mode == "on":
                suggestions = len(outcome.price_suggestions)
    return {"events_per_s": rates, "price_suggestions": suggestions}


def memory(skus: int) -> dict[str, Any]:
    cfg = PricingConfig()
    rng = random.Random(1)
    tracemalloc.start()
    table = SkuTable(skus)
    for s in range(skus):
        for b in range(cfg.demand.window_buckets + 30):  # every bucket of the window filled
            counts = (rng.randint(1, 50), rng.randint(0, 9), rng.randint(0, 3))
            table.add_counts(f"sku{s:07d}", counts, b * cfg.demand.bucket_s, cfg)
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    state = table.get("sku0000000")
    assert state is not None
    return {"skus": skus, "bytes": size, "bytes_per_sku": round(size / skus),
            "changelog_value_bytes": len(orjson.dumps(state.to_dict()))}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--skus", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--demand-shifts", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--memory-skus", type=int, default=10_000)
    args = parser.parse_args()
    mapped = shop(args)
    out = {
        "events": len(mapped), "skus": args.skus,
        "traffic": [traffic(mapped, b, args.workers) for b in (1, 100, 1000)],
        "memory": memory(args.memory_skus),
        "throughput": throughput(mapped, args.rounds),
    }  # fmt: skip
    print(json.dumps(out))


if __name__ == "__main__":
    main()
