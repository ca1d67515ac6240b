"""Flash-sale fan-out, measured on the pure core: 100,000 interested customers.

One process, no broker: an interest index holding ``--interested`` customers who viewed,
carted or bought one of the sale's 20 SKUs or 2 categories in the last days, plus as many
entries on other SKUs; then the announcement's fan-out in stages, each timed:

1. lookup: ``InterestIndex.interested`` for the campaign;
2. enroll: each customer's notices laid out (``flash_sale.enroll``), tiers 5% platinum
   (2 h early), 10% gold (1 h), the rest none;
3. fire: every notice at its due time (``on_due``), half the customers still carrying a
   sale item at last chance; the ``starts_now`` burst (every untiered customer at the
   same instant) is timed on its own;
4. encode: every notification to JSON bytes (orjson), as a producer would send them.

What is not measured: Kafka produce, the contact policy, the table writes of the new
deadlines (the broker-bound part of a real worker); with a worker's ~88,000 awaited
sends/s (DESIGN.md) producing 100,000 notices alone would take over a second.

.venv/bin/python scripts/flash_sale_fanout.py --interested 100000
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

import orjson

from streamcrm.events import Event
from streamcrm.policies import flash_sale as fs
from streamcrm.policies.flash_sale_index import InterestIndex

H = 3600.0


def build_index(rng: random.Random, n: int, now: float) -> InterestIndex:
    index = InterestIndex()
    for i in range(n):
        customer = f"c{i:07d}"
        for sku, cat in ((f"sale{rng.randrange(20)}", f"cat{rng.randrange(2)}"), (f"other{rng.randrange(50_000)}", "cat9")):
            kind = rng.choices(("product_viewed", "cart_item_added", "order_placed"), (0.7, 0.25, 0.05))[0]
            ts = now - rng.uniform(0, 5 * 24 * H)
            if kind == "product_viewed":
                body: dict[str, Any] = {"sku": sku, "category": cat, "price": 10.0}
            elif kind == "cart_item_added":
                body = {"cart_id": "k", "sku": sku, "qty": 1, "unit_price": 10.0, "category": cat}
            else:
                body = {"order_id": "o", "total": 10.0, "lines": [{"sku": sku, "qty": 1, "unit_price": 10.0}]}
            index.record(Event("e", kind, customer, ts, "web", None, body))
    return index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interested", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    now = 1_800_000_000.0
    index = build_index(rng, args.interested, now)
    sale = fs.Campaign("fs1", tuple(f"sale{i}" for i in range(20)), ("cat0", "cat1"),
                       now + 4 * H, now + 8 * H, 30.0, (("platinum", 2 * H), ("gold", H)))  # fmt: skip
    cfg = fs.FlashConfig()
    timings: dict[str, float] = {}
    cpu_start = time.process_time()  # the machine is shared: CPU time says what wall time hides

    t = time.perf_counter()
    found = index.interested(skus=sale.skus, categories=sale.categories, now=now)
    timings["lookup_s"] = time.perf_counter() - t

    t = time.perf_counter()
    states = {}
    for customer, interest in found.items():
        tier = rng.choices(("platinum", "gold", None), (0.05, 0.10, 0.85))[0]
        states[customer], _, _ = fs.enroll(None, customer, sale, tier, interest, cfg, now=now)
    timings["enroll_s"] = time.perf_counter() - t

    carrying = {c: fs.Shopping(cart=frozenset(found[c][1])) if rng.random() < 0.5 else fs.Shopping() for c in found}
    by_time: dict[float, list[str]] = {}
    for customer, state in states.items():
        for notice in state.pending if state else ():
            by_time.setdefault(notice.due_at, []).append(customer)
    sent: list[dict[str, Any]] = []
    t = time.perf_counter()
    for at in sorted(by_time):
        start = time.perf_counter()
        for customer in dict.fromkeys(by_time[at]):
            states[customer], out, _ = fs.on_due(states[customer], at, cfg, carrying[customer])
            sent += out
        if at == sale.starts_at:
            timings["starts_now_burst_s"] = time.perf_counter() - start
    timings["fire_s"] = time.perf_counter() - t

    t = time.perf_counter()
    payloads = [orjson.dumps(body) for body in sent]
    timings["encode_s"] = time.perf_counter() - t

    kinds: dict[str, int] = {}
    for body in sent:
        kinds[body["notice"]] = kinds.get(body["notice"], 0) + 1
    total = timings["lookup_s"] + timings["enroll_s"] + timings["fire_s"] + timings["encode_s"]
    cpu = time.process_time() - cpu_start
    print(orjson.dumps({
        "interested": len(found), "index_items_entries": index.size(), "notices": len(sent),
        "by_notice": kinds, "bytes": sum(map(len, payloads)),
        **{k: round(v, 3) for k, v in timings.items()}, "pure_total_s": round(total, 3), "pure_cpu_s": round(cpu, 3),
        "notices_per_s": round(len(sent) / (timings["fire_s"] + timings["encode_s"])),
    }).decode())  # fmt: skip


if __name__ == "__main__":
    main()
