"""Write the synthetic shop's traffic as a Taobao UserBehavior CSV (for replay benchmarks).

    .venv/bin/python scripts/synthetic_taobao.py --out /tmp/synthetic_taobao_100k.csv
    .venv/bin/streamcrm replay --format taobao /tmp/synthetic_taobao_100k.csv --json

Columns as the public log (and ``replay --format taobao``): user_id, item_id, category_id,
behavior (pv, cart, buy), ts (Unix seconds), no header; one ``buy`` row per order line.
The defaults (4,000,000 SKUs, Zipf exponent 0.8, 2,000 customers) give 100,000 rows with
about 75,000 distinct items, the shape of a 96,000-row slice of the real log. Prints the
counts as JSON.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

import orjson

from streamcrm.synthetic import generate


def rows(args: argparse.Namespace) -> list[str]:
    out: list[str] = []
    events = generate(10 * args.rows, seed=args.seed, customers=args.customers,
                      skus=args.skus, zipf=args.zipf)  # fmt: skip
    categories: dict[str, int] = {}
    for record in events:
        e = orjson.loads(record.value)
        user = int(e["customer_id"][1:]) + 1
        ts = int(datetime.fromisoformat(e["ts"].replace("Z", "+00:00")).timestamp())
        kind = {"product_viewed": "pv", "cart_item_added": "cart"}.get(e["type"])
        lines = [e] if kind else e.get("lines", []) if e["type"] == "order_placed" else []
        for line in lines:
            category = categories.setdefault(line["category"], 1_000_000 + len(categories))
            item = int(line["sku"][3:]) + 1
            out.append(f"{user},{item},{category},{kind or 'buy'},{ts}")
        if len(out) >= args.rows:
            return out[: args.rows]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--skus", type=int, default=4_000_000)
    parser.add_argument("--zipf", type=float, default=0.8)
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--out", required=True, help="the CSV to write")
    args = parser.parse_args()
    lines = rows(args)
    Path(args.out).write_text("\n".join(lines) + "\n")
    items = {line.split(",")[1] for line in lines}
    behaviours: dict[str, int] = {}
    for line in lines:
        kind = line.split(",")[3]
        behaviours[kind] = behaviours.get(kind, 0) + 1
    summary = {"out": args.out, "rows": len(lines), "distinct_items": len(items), **behaviours}
    sys.stdout.write(orjson.dumps(summary).decode() + "\n")


if __name__ == "__main__":
    main()
