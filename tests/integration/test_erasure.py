"""Right to erasure through a real worker, broker and Redis: the customer is gone from the
table, the changelog (a tombstone), Redis and the deadlines, a receipt is published, a
SIGKILL and restart does not bring them back, and new events make a fresh customer."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from typing import Any

import orjson
import redis
from aiokafka import AIOKafkaProducer

from streamcrm.contract import validator
from streamcrm.events import format_ts, parse_ts
from streamcrm.snapshot import snapshot_key
from streamcrm.verify.readback import read_topic

from .conftest import Deployment, WorkerHandle, consume

# Live deadlines: abandoned after 2 s, a coupon at 25 s (time for the forget command to
# start and publish first); nobody held out; decisions logged.
LIVE = ("--log-level", "info", "--clock", "wall", "--abandon-after", "2s",
        "--stages", "coupon:25s:incentive", "--holdout", "0")  # fmt: skip
GONE, STAYS = "c-gone", "c-stays"
QUERY = "QUERY-7f3a my home address 12 Elm St"  # must never reach state or logs


def body(kind: str, customer: str, **fields: Any) -> bytes:
    return orjson.dumps({"event_id": str(uuid.uuid4()), "type": kind, "customer_id": customer,
                         "ts": format_ts(time.time()), "channel": "web", **fields})  # fmt: skip


async def send(producer: AIOKafkaProducer, topic: str, customer: str, value: bytes) -> None:
    await producer.send_and_wait(topic, value, key=customer.encode())


async def shop(dep: Deployment, producer: AIOKafkaProducer, customer: str) -> None:
    t = dep.topics
    await send(producer, t.browse, customer, body("product_viewed", customer, sku="s1",
                                                  category="shoes", price=60.0))  # fmt: skip
    await send(producer, t.browse, customer, body("search_performed", customer, query=QUERY,
                                                  category="shoes"))  # fmt: skip
    await send(producer, t.cart, customer, body("cart_item_added", customer, cart_id=f"k-{customer}",
                                                sku="s1", qty=2, unit_price=60.0))  # fmt: skip


def forget(dep: Deployment, customer: str) -> str:
    t = dep.topics
    done = subprocess.run(
        [sys.executable, "-m", "streamcrm", "forget", customer, "--request-id", "DSR-17",
         "--broker", dep.bootstrap, "--topic-order", t.order, "--topic-erasures", t.erasures],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def settled(worker: WorkerHandle) -> dict[str, Any]:
    return worker.wait_for(lambda s: s["snapshot"]["pending"] == 0, what="snapshots written")


async def test_a_forgotten_customer_is_gone_and_stays_gone(
    deployment: Deployment, producer: AIOKafkaProducer, redis_client: redis.Redis
) -> None:
    dep = deployment
    worker = dep.start_worker("w1", extra=LIVE)
    await shop(dep, producer, GONE)
    await shop(dep, producer, STAYS)
    worker.wait_for(lambda s: s["applied"] == 6 and s["timers_pending"] == 2, what="both carts")
    settled(worker)
    assert redis_client.exists(snapshot_key(GONE)) and worker.get(f"/customers/{GONE}")

    erased = await erase_and_check(dep, worker, redis_client)
    worker.kill()  # SIGKILL: the restarted worker restores the table from the changelog
    # As if the Redis delete had been staged but never written before the kill:
    redis_client.hset(snapshot_key(GONE), mapping={"cart_id": f"k-{GONE}"})
    restarted = dep.start_worker("w2", extra=LIVE)
    await still_gone_after_restart(dep, restarted, producer, redis_client, erased)

    # New events for the id make a new, empty customer.
    await send(producer, dep.topics.browse, GONE, body("product_viewed", GONE, sku="s9",
                                                     category="garden", price=5.0))  # fmt: skip
    restarted.wait_for(lambda s: s["customers"] == 2, what="the new customer")
    fresh = restarted.get(f"/customers/{GONE}")
    assert fresh["events_applied"] == 1 and fresh["cart"] is None
    assert [v["sku"] for v in fresh["recent_views"]] == ["s9"]
    assert fresh["first_seen"] > parse_ts(erased["requested_at"])
    settled(restarted)
    snapshot = redis_client.hgetall(snapshot_key(GONE))
    assert snapshot["cart_id"] == "" and snapshot["order_count"] == "0"

    # Logged at INFO: neither the search text nor the customer ids.
    logs = "".join(w.log_path.read_text(errors="replace") for w in dep.workers)
    assert '"coupon_id"' in logs  # the decision log did run at INFO (the coupon of STAYS)
    for secret in (QUERY, GONE, STAYS):
        assert secret not in logs, secret


async def erase_and_check(
    dep: Deployment, worker: WorkerHandle, redis_client: redis.Redis
) -> dict[str, Any]:
    """``streamcrm forget``: the receipt, and the customer gone from table, Redis, timers
    and changelog; the erased cart's coupon never fires."""
    assert "erasure of c-gone requested" in forget(dep, GONE)
    worker.wait_for(lambda s: s["erasures"]["erased"] == 1, what="the erasure applied")
    (receipt,) = await consume(dep.bootstrap, dep.topics.erasures, expected=1, timeout=30)
    erased: dict[str, Any] = orjson.loads(receipt.value)
    validator("customer_erased").validate(erased)
    assert receipt.key == GONE.encode() and erased["customer_id"] == GONE
    assert erased["request_id"] == "DSR-17" and erased["had_state"] is True
    assert erased["deadline_dropped"] is True  # the cart's coupon stage
    stats = settled(worker)
    assert stats["timers_pending"] == 1
    assert worker.get(f"/customers/{GONE}") is None
    assert not redis_client.exists(snapshot_key(GONE))

    # The coupon stage of the erased cart passes: only the other customer's fires.
    coupons = await consume(dep.bootstrap, dep.topics.coupons, expected=1, timeout=60, settle=3)
    assert [orjson.loads(m.value)["customer_id"] for m in coupons] == [STAYS]
    changelog = await read_topic(dep.bootstrap, f"{dep.app_id}-customers-v1-changelog")
    last = {r.key: r.value for r in changelog}  # per partition in offset order: the last wins
    assert last[GONE.encode()] is None  # a tombstone
    assert QUERY.encode() not in b"".join(r.value or b"" for r in changelog)
    return erased


async def still_gone_after_restart(
    dep: Deployment,
    restarted: WorkerHandle,
    producer: AIOKafkaProducer,
    redis_client: redis.Redis,
    erased: dict[str, Any],
) -> None:
    restarted.wait_for(lambda s: s["customers"] == 1, what="the table restored")
    restarted.wait_for(
        lambda s: s["snapshot"]["resyncs"]["assigned"] >= 1 and not s["snapshot"]["resync_running"]
        and s["snapshot"]["pending"] == 0, what="the resync after the restart",
    )  # fmt: skip
    assert not redis_client.exists(snapshot_key(GONE))  # deleted again by the resync
    assert restarted.get(f"/customers/{GONE}") is None and restarted.get(f"/customers/{STAYS}")
    await shop(dep, producer, STAYS)  # traffic after the restart, so the worker has work
    restarted.wait_for(lambda s: s["applied"] >= 3, what="traffic after the restart")
    settled(restarted)
    assert restarted.get(f"/customers/{GONE}") is None
    assert not redis_client.exists(snapshot_key(GONE))
    receipts = await consume(dep.bootstrap, dep.topics.erasures, expected=1, timeout=10)
    # A request whose offset was not committed before the SIGKILL is carried out again,
    # with the same receipt id; it never adds another.
    assert {orjson.loads(m.value)["event_id"] for m in receipts} == {erased["event_id"]}
