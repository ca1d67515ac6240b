"""No wall-clock deadline fires on a partial view of a customer (issue 12, point 2).

Carts whose deadlines passed long ago, and their orders (placed before the deadlines),
are all in the log; the order topic lags behind a backlog of other orders. The cart
topic is read first: a deadline must wait until the order topic's partition has been
read past it, so no reminder and no coupon goes out for a cart that was bought.
"""

from __future__ import annotations

import time
import uuid

import orjson
from aiokafka import AIOKafkaProducer

from streamcrm.config import Settings
from streamcrm.events import format_ts
from streamcrm.kafka_admin import ensure_topics

from .conftest import Deployment, consume

STAGES = (
    "--clock",
    "wall",
    "--abandon-after",
    "2s",
    "--stages",
    "reminder:2s,coupon:4s:incentive",
    "--holdout",
    "0",
)
BOUGHT = 40
BACKLOG = 4000  # other customers' orders ahead of the ones that matter


def event(kind: str, customer: str, ts: float, **fields: object) -> bytes:
    return orjson.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "type": kind,
            "customer_id": customer,
            "ts": format_ts(ts),
            "channel": "web",
            **fields,
        }
    )


def order(customer: str, ts: float, cart_id: str | None) -> bytes:
    line = {"sku": "sku-1", "qty": 1, "unit_price": 30.0}
    extra = {"cart_id": cart_id} if cart_id else {}
    return event(
        "order_placed", customer, ts, order_id=f"o-{uuid.uuid4().hex[:12]}", lines=[line],
        total=30.0, **extra,
    )  # fmt: skip


async def test_a_lagging_order_topic_holds_deadlines_until_it_is_read_past_them(
    deployment: Deployment, producer: AIOKafkaProducer
) -> None:
    await ensure_topics(
        Settings(
            broker=deployment.bootstrap, partitions=deployment.partitions, topics=deployment.topics
        )
    )
    past = time.time() - 3600  # every deadline (past + 2 s, past + 4 s) is long gone
    topics = deployment.topics
    customers = [f"c-bought-{i}" for i in range(BOUGHT)]
    for customer in customers:
        cart = event(
            "cart_item_added", customer, past, cart_id=f"cart-{customer}", sku="sku-1", qty=1,
            unit_price=30.0,
        )  # fmt: skip
        await producer.send(topics.cart, cart, key=customer.encode())
    for i in range(BACKLOG):
        other = f"c-other-{i % 500}"
        await producer.send(topics.order, order(other, past - 600, None), key=other.encode())
    for customer in customers:  # bought one second after the cart, before its deadline
        bought = order(customer, past + 1, f"cart-{customer}")
        await producer.send(topics.order, bought, key=customer.encode())
    await producer.flush()

    worker = deployment.start_worker("w1", redis=False, extra=STAGES)
    total = 2 * BOUGHT + BACKLOG
    stats = worker.wait_for(
        lambda s: s["events_in"] >= total and s["lag"] == 0, timeout=120, what="all read"
    )
    assert stats["applied"] == total
    assert stats["batches"] > 3  # the order topic really was read over several batches
    # A moment for the sweep: anything that was still going to fire has fired.
    time.sleep(2)
    stats = worker.stats()
    outcomes = stats["abandoned_cart"]
    assert outcomes["reminded"] == 0 and outcomes["couponed"] == 0, outcomes
    coupons = await consume(deployment.bootstrap, topics.coupons, expected=0, timeout=3)
    assert coupons == []
    for customer in customers[:10]:
        state = worker.get(f"/customers/{customer}")
        assert state["order_count"] == 1 and state["cart"] is None, state
