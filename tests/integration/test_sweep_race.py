"""The timer sweep never fires on a state a batch is still writing (issue 12, point 6).

A batch's commit awaits the producer between its store writes; under producer
back-pressure (here a drill's slow producer: every send waits 0.1 s) a sweep that ran in
such a gap read the state from before the batch, fired on it, and was overwritten.
"""

from __future__ import annotations

import time
import uuid

import orjson
from aiokafka import AIOKafkaProducer

from streamcrm.app.agents import partition_of
from streamcrm.events import format_ts

from .conftest import Deployment, consume

SLOW_PRODUCER = {"STREAMCRM_DRILL_SEND_DELAY_S": "0.1"}
REMIND_AFTER_5S = (
    "--clock",
    "wall",
    "--abandon-after",
    "5s",
    "--stages",
    "reminder:5s",
    "--holdout",
    "0",
)
FILLERS = 50  # customers ahead of the cart in the batch: 5 s of commit at 0.1 s a send


def cart_add(customer: str, sku: str, ts: float) -> bytes:
    return orjson.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "type": "cart_item_added",
            "customer_id": customer,
            "ts": format_ts(ts),
            "channel": "web",
            "cart_id": f"cart-{customer}",
            "sku": sku,
            "qty": 1,
            "unit_price": 25.0,
        }
    )


async def test_a_sweep_during_a_slow_commit_fires_on_the_committed_state(
    deployment: Deployment, producer: AIOKafkaProducer
) -> None:
    worker = deployment.start_worker("w1", redis=False, extra=REMIND_AFTER_5S, env=SLOW_PRODUCER)
    customer = "c-race"
    partition = partition_of(customer, deployment.partitions)
    # Customers on the same partition, published before the cart's second line: in the
    # batch they come first, so the cart's new state is written last.
    fillers = [
        f"c-fill-{i}"
        for i in range(2000)
        if partition_of(f"c-fill-{i}", deployment.partitions) == partition
    ][:FILLERS]
    worker.wait_for(lambda s: len(s["partitions"]) == deployment.partitions, what="assigned")
    t0 = time.time()
    topic = deployment.topics.cart
    await producer.send_and_wait(topic, cart_add(customer, "sku-1", t0), key=customer.encode())
    worker.wait_for(lambda s: s["applied"] == 1, what="the cart's first line applied")

    # One batch, ~1.5 s after t0: the fillers, then the second line (cart version 2, the
    # same deadline, t0 + 5 s), in one produce request (one record batch, one fetch). Its
    # commit takes over 5 s, so the sweep runs while it is being written.
    burst = AIOKafkaProducer(bootstrap_servers=deployment.bootstrap, linger_ms=100)
    await burst.start()
    try:
        for filler in fillers:
            await burst.send(topic, cart_add(filler, "sku-9", t0), key=filler.encode())
        await burst.send(topic, cart_add(customer, "sku-2", t0), key=customer.encode())
        await burst.flush()
    finally:
        await burst.stop()

    everyone = FILLERS + 1
    reminders = await consume(
        deployment.bootstrap, deployment.topics.coupons, expected=everyone, timeout=90, settle=4
    )
    mine = [orjson.loads(m.value) for m in reminders if m.key == customer.encode()]
    assert len(mine) == 1, mine
    assert mine[0]["stage"] == "reminder"
    # The reminder is for the cart as it was at its deadline: both lines, version 2.
    assert mine[0]["cart"]["version"] == 2, mine[0]["cart"]
    assert sorted(line["sku"] for line in mine[0]["cart"]["lines"]) == ["sku-1", "sku-2"]
    state = worker.get(f"/customers/{customer}")
    assert state["abandonment"]["stages_fired"] == ["reminder"], state["abandonment"]
    assert state["abandonment"]["cart_version"] == 2
    # Every filler's deadline fired too (none was swept away while its state was unwritten).
    per_customer = {m.key.decode() for m in reminders}
    assert per_customer == {customer, *fillers}
