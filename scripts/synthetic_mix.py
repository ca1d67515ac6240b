"""The synthetic shop's proportions, measured: sessions, carts, orders, cancellations.

.venv/bin/python scripts/synthetic_mix.py --events 200000 --customers 20000 --skus 100000
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

import orjson

from streamcrm.synthetic import generate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--skus", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    types: Counter[str] = Counter()
    sessions: dict[str, set[str]] = {}
    carted: set[str] = set()
    ordered_sessions: set[str] = set()
    searched: set[str] = set()
    carts: set[str] = set()
    ordered_carts: set[str] = set()
    views: Counter[str] = Counter()
    for record in generate(args.events, seed=args.seed, customers=args.customers, skus=args.skus):
        e = orjson.loads(record.value)
        types[e["type"]] += 1
        session = e.get("session_id", "")
        sessions.setdefault(e["customer_id"], set()).add(session)
        if e["type"] == "search_performed":
            searched.add(session)
        if e["type"] == "product_viewed":
            views[e["sku"]] += 1
        if e["type"] == "cart_item_added":
            carted.add(session)
            carts.add(e["cart_id"])
        if e["type"] == "order_placed":
            ordered_sessions.add(session)
            ordered_carts.add(e["cart_id"])
    n_sessions = sum(len(s) for s in sessions.values())
    top = views.most_common()
    total_views = sum(views.values())
    head = sum(c for _, c in top[: max(1, len(top) // 100)])
    out = {
        "events": args.events,
        "customers_seen": len(sessions),
        "sessions": n_sessions,
        "returning_session_share": round(1 - len(sessions) / n_sessions, 3),
        "sessions_with_cart": round(len(carted) / n_sessions, 3),
        "sessions_with_order": round(len(ordered_sessions) / n_sessions, 3),
        "sessions_with_search": round(len(searched) / n_sessions, 3),
        "carts_never_ordered": round(1 - len(carts & ordered_carts) / max(len(carts), 1), 3),
        "orders_cancelled": round(types["order_cancelled"] / max(types["order_placed"], 1), 3),
        "distinct_skus_viewed": len(views),
        "views_on_top_1pct_of_viewed_skus": round(head / max(total_views, 1), 3),
        "types": dict(types.most_common()),
    }
    sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")


if __name__ == "__main__":
    main()
