"""Durable abandoned-cart timers on a real broker: crashes and rebalances lose no deadline
and fire none twice."""

from __future__ import annotations

import time
import uuid
from collections import Counter

import orjson
import redis
from aiokafka import AIOKafkaProducer

from streamcrm.events import format_ts
from streamcrm.snapshot import snapshot_key

from .conftest import Deployment, consume

# Short, live (wall-clock) deadlines: abandoned after 2 s, one coupon stage at 8 s.
LIVE = (
    "--log-level",
    "info",
    "--clock",
    "wall",
    "--abandon-after",
    "2s",
    "--stages",
    "coupon:8s:incentive",
    "--holdout",
    "0",
)


def cart_add(customer: str, ts: float) -> bytes:
    return orjson.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "type": "cart_item_added",
            "customer_id": customer,
            "ts": format_ts(ts),
            "channel": "web",
            "cart_id": f"cart-{customer}",
            "sku": "sku-1",
            "qty": 2,
            "unit_price": 60.0,
        }
    )


async def test_sigkill_before_the_deadline_still_gives_exactly_one_coupon(
    deployment: Deployment, producer: AIOKafkaProducer, redis_client: redis.Redis
) -> None:
    worker = deployment.start_worker("w1", extra=LIVE)
    await producer.send_and_wait(
        deployment.topics.cart, cart_add("c-kill", time.time()), key=b"c-kill"
    )
    worker.wait_for(lambda s: s["applied"] == 1 and s["timers_pending"] == 1, what="cart applied")
    worker.kill()  # before the 8 s deadline: no clean shutdown, no final commit

    restarted = deployment.start_worker("w2", extra=LIVE)
    coupons = await consume(
        deployment.bootstrap, deployment.topics.coupons, expected=1, timeout=60, settle=4
    )
    assert len(coupons) == 1, [m.value for m in coupons]
    coupon = orjson.loads(coupons[0].value)
    assert (coupon["customer_id"], coupon["stage"], coupon["cart"]["cart_id"]) == (
        "c-kill",
        "coupon",
        "cart-c-kill",
    )
    assert coupon["cart"]["value"] == 120.0 and coupon["code"]
    assert coupons[0].key == b"c-kill"
    stats = restarted.wait_for(
        lambda s: s["coupons_issued"] == 1, what="the restarted worker fired it"
    )
    assert stats["timer_fires"] == 1
    state = restarted.get("/customers/c-kill")  # restored from the changelog, then fired
    assert state["abandonment"]["stages_fired"] == ["coupon"]
    assert state["last_contact"]["coupon_id"] == coupon["coupon_id"]
    restarted.wait_for(lambda s: s["snapshot"]["pending"] == 0, what="snapshot flushed")
    snap = redis_client.hgetall(snapshot_key("c-kill"))
    assert snap["coupon_id"] == coupon["coupon_id"] and snap["coupon_code"] == coupon["code"]


async def test_timers_of_a_stopped_worker_fire_once_on_the_other(
    deployment: Deployment, producer: AIOKafkaProducer
) -> None:
    w1 = deployment.start_worker("w1", extra=LIVE)
    w2 = deployment.start_worker("w2", extra=LIVE)
    both = lambda s: len(s["partitions"]) == deployment.partitions // 2  # noqa: E731
    w1.wait_for(both, what="w1 owns half the partitions")
    w2.wait_for(both, what="w2 owns half the partitions")

    customers = [f"c-move-{i}" for i in range(24)]
    now = time.time()
    for customer in customers:
        await producer.send(deployment.topics.cart, cart_add(customer, now), key=customer.encode())
    await producer.flush()
    for worker in (w1, w2):
        worker.wait_for(lambda s: s["applied"] > 0, what="both workers own some carts")
    w1.wait_for(
        lambda s: s["applied"] + w2.stats()["applied"] == len(customers), what="all carts applied"
    )
    moved = w2.stats()["timers_pending"]
    assert moved > 0
    w2.stop()  # its partitions, and their pending deadlines, move to w1

    coupons = await consume(
        deployment.bootstrap,
        deployment.topics.coupons,
        expected=len(customers),
        timeout=90,
        settle=5,
    )
    per_customer = Counter(orjson.loads(m.value)["customer_id"] for m in coupons)
    assert per_customer == Counter(customers)  # every cart exactly once
    stats = w1.wait_for(lambda s: s["coupons_issued"] == len(customers), what="w1 fired them all")
    assert stats["partitions"] == list(range(deployment.partitions))
