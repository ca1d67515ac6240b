"""Price suggestions, measured on simulated Poisson demand (event time, seeded).

1. steady: SKUs at constant rates from 0.5 to ~190 views/h for a week (10% as many
   cart adds, 3% purchases): every suggestion is a false one.
2. shift: 100 SKUs for 48 h; at 36 h half of them change rate (x3, or x0.25 with
   --factor 0.25): how many are caught, how fast, and how many unchanged SKUs fire.
3. cost: events/s of the bounded table at 1,000 and 100,000 SKUs (capacity 10,000), and
   the SKUs it holds: the state is capped whatever the catalogue.

.venv/bin/python scripts/pricing_eval.py
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

import orjson

from streamcrm.events import Event
from streamcrm.pricing.suggest import PricingConfig
from streamcrm.pricing.table import SkuTable

H = 3600.0


def stream(rng: random.Random, skus: int, hours: float, rate: Callable[[int, float], float]) -> list[Event]:
    """Per SKU a Poisson process; ``rate(sku, t)`` in events/h (piecewise constant in t)."""
    events = []
    for s in range(skus):
        t, sku = 0.0, f"s{s}"
        while (t := t + rng.expovariate(rate(s, t) / H)) < hours * H:
            u = rng.random()
            if u < 0.87:
                events.append(Event("e", "product_viewed", "c", t, "web", None, {"sku": sku, "category": "x", "price": 1.0}))
            elif u < 0.97:
                events.append(Event("e", "cart_item_added", "c", t, "web", None, {"cart_id": "k", "sku": sku, "qty": 1, "unit_price": 1.0}))
            else:
                lines = [{"sku": sku, "qty": 1, "unit_price": 1.0}]
                events.append(Event("e", "order_placed", "c", t, "web", None, {"order_id": "o", "lines": lines, "total": 1.0}))
    events.sort(key=lambda e: e.ts)
    return events


def steady(cfg: PricingConfig, seed: int) -> dict[str, Any]:
    events = stream(random.Random(seed), 300, 7 * 24, lambda s, t: 0.5 * 1.02**s)
    table = SkuTable()
    fired = sum(len(table.observe(e, cfg)) for e in events)
    return {"test": "steady", "skus": 300, "days": 7, "events": len(events),
            "false_suggestions": fired, "per_sku_day": round(fired / (300 * 7), 5)}  # fmt: skip


def shift(cfg: PricingConfig, seed: int, factor: float) -> dict[str, Any]:
    def rate(s: int, t: float) -> float:
        return (2 + s * 0.5) * (factor if s % 2 == 0 and t >= 36 * H else 1.0)

    table, caught, wrong, delays = SkuTable(), set(), set(), []
    for e in stream(random.Random(seed), 100, 48, rate):
        for out in table.observe(e, cfg):
            s = int(out["sku"][1:])
            if s % 2 == 0 and e.ts >= 36 * H and s not in caught:
                caught.add(s)
                delays.append((e.ts - 36 * H) / H)
            elif s % 2 == 1 or e.ts < 36 * H:
                wrong.add(s)
    delays.sort()
    return {"test": f"shift_x{factor}", "changed": 50, "caught": len(caught),
            "median_delay_h": round(delays[len(delays) // 2], 2) if delays else None,
            "skus_with_false_suggestions": len(wrong)}  # fmt: skip


def cost(cfg: PricingConfig, seed: int, catalogue: int, n: int = 300_000) -> dict[str, Any]:
    rng = random.Random(seed)
    # Zipf-like popularity (rank density ~ 1/r: log-uniform ranks), an event per 0.05 s.
    events = [
        Event("e", "product_viewed", "c", i * 0.05, "web", None,
              {"sku": f"s{int(catalogue ** rng.random()) - 1}", "category": "x", "price": 1.0})
        for i in range(n)
    ]  # fmt: skip
    table = SkuTable(capacity=10_000)
    start = time.perf_counter()
    for e in events:
        table.observe(e, cfg)
    elapsed = time.perf_counter() - start
    return {"test": "cost", "catalogue": catalogue, "events": n, "events_per_s": round(n / elapsed),
            "skus_held": len(table), "evicted": table.evicted}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    cfg = PricingConfig()
    rows = [steady(cfg, args.seed), shift(cfg, args.seed + 1, 3.0), shift(cfg, args.seed + 2, 0.25)]
    rows += [cost(cfg, args.seed, 1000), cost(cfg, args.seed, 100_000)]
    for row in rows:
        print(orjson.dumps(row).decode())


if __name__ == "__main__":
    main()
