"""Price suggestions through a real worker: demand re-keyed by SKU over the internal
topic, one owner per SKU, suggestions on the pricing topic.

A burst of cart adds on one SKU, from customers on different input partitions, gives
exactly one suggestion for that SKU (the rate limit holds the rest back); a SKU with
steady demand gives none; a record on the internal topic that is not a delta is
dead-lettered and the agent carries on.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import orjson
from aiokafka import AIOKafkaProducer

from streamcrm.app.agents import partition_of
from streamcrm.contract import validator
from streamcrm.events import format_ts

from .conftest import Deployment, WorkerHandle, consume

H = 3600.0
CUSTOMERS = [f"c-{i:02d}" for i in range(16)]


def cart_add(customer: str, sku: str, ts: float) -> bytes:
    return orjson.dumps(
        {
            "event_id": str(uuid.uuid4()), "type": "cart_item_added", "customer_id": customer,
            "ts": format_ts(ts), "channel": "web", "cart_id": f"cart-{customer}", "sku": sku,
            "qty": 1, "unit_price": 20.0,
        }
    )  # fmt: skip


async def _send_hour(
    producer: AIOKafkaProducer, deployment: Deployment, start: float, per_sku: dict[str, int]
) -> int:
    """``per_sku`` cart adds spread evenly over the hour from ``start``, customers in turn."""
    sent = 0
    events = sorted(
        (start + H * (i + 0.5) / n, sku) for sku, n in per_sku.items() for i in range(n)
    )
    for ts, sku in events:
        customer = CUSTOMERS[sent % len(CUSTOMERS)]
        await producer.send(deployment.topics.cart, cart_add(customer, sku, ts), key=customer.encode())
        sent += 1
    await producer.flush()
    return sent


def _processed(worker: WorkerHandle, n: int) -> None:
    worker.wait_for(lambda s: s["events_in"] >= n, timeout=60, what=f"{n} events processed")


async def test_a_burst_gives_one_suggestion_and_steady_demand_none(
    deployment: Deployment, producer: AIOKafkaProducer
) -> None:
    partitions = {partition_of(c, deployment.partitions) for c in CUSTOMERS}
    assert len(partitions) == deployment.partitions  # the burst comes from every partition
    worker = deployment.start_worker("w1", extra=("--holdout", "0"))
    t0 = time.time() - 11 * H
    sent = 0
    for hour in range(9):  # 9 h of steady demand on both SKUs: the baseline
        sent += await _send_hour(producer, deployment, t0 + hour * H, {"sku-hot": 6, "sku-steady": 6})
        _processed(worker, sent)  # hour by hour: partitions read at one pace keep the rows in time
    # Not a delta: dead-lettered, and the owner carries on.
    await producer.send(deployment.topics.sku_demand, b"{not json", key=b"sku-hot")
    await producer.send(deployment.topics.sku_demand, orjson.dumps({"sku": "x", "rows": [[1, -1, 0, 0]]}), key=b"x")
    for hour in (9, 10):  # the burst: ten times the cart adds for two hours
        sent += await _send_hour(producer, deployment, t0 + hour * H, {"sku-hot": 60, "sku-steady": 6})
        _processed(worker, sent)

    records = await consume(
        deployment.bootstrap, deployment.topics.pricing, expected=1, timeout=60, settle=4
    )
    assert [r.key for r in records] == [b"sku-hot"]
    suggestion = orjson.loads(records[0].value)
    validator("price_suggestion").validate(suggestion)
    assert suggestion["direction"] == "up"
    assert 0 < suggestion["change_percent"] <= 15.0
    evidence = suggestion["evidence"]
    assert evidence["metric"] == "cart_adds" and evidence["z"] >= 4.0
    assert evidence["window_count"] > 2 * evidence["expected_count"]
    stats = worker.wait_for(
        lambda s: s["pricing"]["deltas_rejected"] == 2, what="two bad deltas rejected"
    )
    pricing = stats["pricing"]
    assert pricing["price_suggestions"] == 1
    assert pricing["skus_tracked"] == 2 and pricing["events_counted"] == sent
    assert pricing["deltas_merged"] == pricing["deltas_sent"]
    dead = await consume(
        deployment.bootstrap, deployment.topics.deadletter, expected=2, timeout=30, settle=1
    )
    reasons = sorted(orjson.loads(d.value)["reason"] for d in dead)
    assert reasons == ["invalid_json", "schema_violation"]
    assert {orjson.loads(d.value)["source"]["topic"] for d in dead} == {deployment.topics.sku_demand}


def test_the_demo_reports_price_suggestions_on_the_shifted_shop() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "streamcrm", "demo", "--events", "3000", "--seed", "3",
         "--customers", "150", "--no-redis"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["events_in"] == summary["events_sent"] > 3000  # the bursts come on top
    assert summary["price_suggestions"] >= 1
