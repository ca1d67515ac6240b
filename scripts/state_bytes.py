"""Bytes per customer state (its JSON, as the changelog and the worker count it), by field.

    .venv/bin/python scripts/state_bytes.py                  # the bench's shop: 60,000 events
    .venv/bin/python scripts/state_bytes.py --events 60000 --customers 100000 --skus 100000

Runs the in-memory Processor over the synthetic shop (the bench's defaults), then prints
the mean JSON size of every customer's state and of the first 500 (the sample the
worker's ``state_bytes_per_customer`` reads), and the mean bytes of each top-level field
(and of the profile's and the offer's fields), largest first, as JSON.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import Any

import orjson

from streamcrm.bench.scaling import workload
from streamcrm.decisions import CrmConfig
from streamcrm.ingest import Processor
from streamcrm.replay.runner import KINDS
from streamcrm.state import CustomerState
from streamcrm.state_codec import encode


def breakdown(states: list[CustomerState]) -> dict[str, Any]:
    fields: Counter[str] = Counter()
    for state in states:
        data = orjson.loads(encode(state))
        for name, value in data.items():
            fields[name] += len(orjson.dumps(value)) + len(name) + 4
            if name in ("profile", "offer") and value:
                for sub, inner in value.items():
                    fields[f"{name}.{sub}"] += len(orjson.dumps(inner)) + len(sub) + 4
    n = len(states)
    sizes = [len(encode(s)) for s in states]
    sample = sizes[:500]
    return {
        "customers": n,
        "mean_bytes": round(sum(sizes) / n),
        "mean_bytes_first_500": round(sum(sample) / len(sample)),
        "max_bytes": max(sizes),
        "fields": {k: round(v / n) for k, v in fields.most_common()},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--skus", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    batches = workload(args.skus, args.events, args.customers, args.seed)
    processor = Processor(KINDS, crm=CrmConfig(), clock="event")
    table: dict[str, CustomerState] = {}
    for records, now in batches:
        for customer_id, (_, state) in processor.process(records, table.get, now).states.items():
            table[customer_id] = state
    sys.stdout.write(orjson.dumps(breakdown(list(table.values()))).decode() + "\n")


if __name__ == "__main__":
    main()
