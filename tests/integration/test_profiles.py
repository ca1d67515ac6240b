"""A customer's journey through a real worker: prospect -> new -> repeat -> at risk."""

from __future__ import annotations

import uuid

import orjson
import redis

from streamcrm.config import Settings
from streamcrm.events import format_ts
from streamcrm.publish import publish
from streamcrm.snapshot import snapshot_key

from .conftest import Deployment, consume

T0 = 1_790_000_000.0
DAY = 86_400.0


def event(type_: str, ts: float, **body: object) -> tuple[str, bytes, bytes]:
    kind = "browse" if type_ == "product_viewed" else "order"
    value = {"event_id": str(uuid.uuid4()), "type": type_, "customer_id": "c-journey",
             "ts": format_ts(ts), "channel": "web", **body}  # fmt: skip
    return kind, b"c-journey", orjson.dumps(value)


def order(ts: float, order_id: str) -> tuple[str, bytes, bytes]:
    return event(
        "order_placed",
        ts,
        order_id=order_id,
        total=60.0,
        lines=[{"sku": "s1", "qty": 1, "unit_price": 60.0}],
    )


async def test_lifecycle_journey_emits_profile_events_and_updates_redis(
    deployment: Deployment, redis_client: redis.Redis
) -> None:
    worker = deployment.start_worker(extra=("--clock", "event"))
    settings = Settings(
        broker=deployment.bootstrap, partitions=deployment.partitions, topics=deployment.topics
    )
    journey = [
        event("product_viewed", T0, sku="s1", category="shoes", price=60.0),  # prospect
        order(T0 + DAY, "o1"),  # new
        order(T0 + 11 * DAY, "o2"),  # repeat: active, rhythm 10 days
        event(
            "product_viewed", T0 + 40 * DAY, sku="s2", category="shoes", price=30.0
        ),  # at risk since day 31
    ]
    await publish(settings, journey, end_of_stream=True)
    worker.wait_for(lambda s: s["events_in"] == 4 and s["buffered"] == 0, what="journey applied")

    updates = await consume(
        deployment.bootstrap, deployment.topics.profiles, expected=3, timeout=30, settle=2
    )
    bodies = [orjson.loads(m.value) for m in updates]
    stages = [c["new"] for b in bodies for c in b["changes"] if c["field"] == "lifecycle_stage"]
    assert stages == ["new", "active", "at_risk"]
    olds = [c["old"] for b in bodies for c in b["changes"] if c["field"] == "lifecycle_stage"]
    assert olds == ["prospect", "new", "active"]
    assert all(m.key == b"c-journey" for m in updates)
    worker.wait_for(lambda s: s["snapshot"]["pending"] == 0, what="snapshot flushed")
    snap = redis_client.hgetall(snapshot_key("c-journey"))
    assert snap["lifecycle_stage"] == "at_risk"
    # Points use the tier held when ordering: none for both (silver is reached by o2 itself).
    assert snap["tier"] == "silver" and int(snap["points"]) == 60 + 60
    assert snap["order_count"] == "2"
    offers = await consume(
        deployment.bootstrap, deployment.topics.offers, expected=1, timeout=15, settle=1
    )
    triggers = [orjson.loads(m.value)["trigger"] for m in offers]
    assert triggers.count("win_back") == 1  # (the views also got next-best-offers)
