"""Two live workers share their population learners (``--share-learning``): a product
view on worker A shows in worker B's candidate statistics; after A is SIGKILLed, a
worker that takes its partitions over adopts a checkpoint and continues the exchange
from it (everything learned counted exactly once: nothing re-sent, nothing re-merged).
The learning topic exists only with the flag. Delay and traffic are printed, not
asserted."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import orjson
from aiokafka.admin import AIOKafkaAdminClient

from streamcrm.app.agents import partition_of
from streamcrm.config import Settings
from streamcrm.events import format_ts
from streamcrm.kafka_admin import ensure_topics
from streamcrm.publish import publish
from streamcrm.sharing.kafka import learning_topic
from streamcrm.synthetic import generate

from .conftest import Deployment, WorkerHandle

SHARE = ("--share-learning", "--share-every", "1s", "--checkpoint-every", "1s")


def view(customer: str, sku: str) -> tuple[str, bytes, bytes]:
    body = {"type": "product_viewed", "event_id": uuid.uuid4().hex, "customer_id": customer,
            "ts": format_ts(time.time()), "channel": "web", "sku": sku, "category": "shoes",
            "price": 30.0}  # fmt: skip
    return ("browse", customer.encode(), orjson.dumps(body))


def customer_on(worker: dict[str, Any], partitions: int) -> str:
    owned = set(worker["partitions"])
    return next(c for n in range(1000) if partition_of(c := f"sharer-{n}", partitions) in owned)


def count_on(worker: WorkerHandle, sku: str, timeout: float = 60.0) -> tuple[float, float]:
    """(the SKU's interaction count once the worker tracks it, seconds it took)."""
    began = time.monotonic()
    deadline = began + timeout
    while time.monotonic() < deadline:
        item = worker.get(f"/candidates/{sku}")
        if item is not None:
            return item["count"], time.monotonic() - began
        time.sleep(0.05)
    raise AssertionError(f"{sku} never reached the worker; {worker.stats()['sharing']}")


async def topic_partitions(bootstrap: str, name: str) -> int | None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if name not in await admin.list_topics():
            return None
        (described,) = await admin.describe_topics([name])
        return len(described["partitions"])
    finally:
        await admin.close()


async def test_the_learning_topic_exists_only_with_the_flag(kafka_bootstrap: str) -> None:
    run = uuid.uuid4().hex[:8]
    off = Settings(broker=kafka_bootstrap, app_id=f"off-{run}", partitions=2)
    await ensure_topics(off)
    assert await topic_partitions(kafka_bootstrap, learning_topic(off.app_id)) is None
    on = Settings(broker=kafka_bootstrap, app_id=f"on-{run}", partitions=2, share_learning=True)
    await ensure_topics(on)
    assert await topic_partitions(kafka_bootstrap, learning_topic(on.app_id)) == 1


async def test_a_view_on_one_worker_reaches_the_other_and_survives_a_handover(
    deployment: Deployment,
) -> None:
    n = deployment.partitions
    a = deployment.start_worker("a", extra=SHARE)
    b = deployment.start_worker("b", extra=SHARE)
    halves = lambda s: len(s["partitions"]) == n // 2  # noqa: E731
    a_stats = a.wait_for(halves, timeout=120, what="a owning half")
    b.wait_for(halves, timeout=120, what="b owning half")
    settings = Settings(broker=deployment.bootstrap, partitions=n, topics=deployment.topics)
    shop = [(r.topic_kind, r.key, r.value) for r in generate(3000, seed=7, customers=400)]
    await publish(settings, shop)
    both = lambda s: s["sharing"]["deltas_merged"] > 0  # noqa: E731
    a.wait_for(both, timeout=60, what="a merging b's deltas")
    b.wait_for(both, timeout=60, what="b merging a's deltas")

    sku = f"shared-{deployment.run_id}"
    await publish(settings, [view(customer_on(a_stats, n), sku)])
    on_a, _ = count_on(a, sku)
    on_b, delay = count_on(b, sku)
    assert on_b == on_a  # merged once, not per redelivery or per checkpoint
    a_after, b_after = a.stats()["sharing"], b.stats()["sharing"]
    events = sum(w["events_in"] for w in (a.stats(), b.stats()))
    sent = a_after["bytes_sent"] + b_after["bytes_sent"]
    print(f"\nview on a -> b's candidates: {delay:.2f} s after a had it (--share-every 1s); "
          f"b's last merge {b_after['last_delay_s']} s after publishing, max "
          f"{b_after['max_delay_s']} s; learning topic: {sent} bytes written for {events} "
          f"input events = {sent / events:.1f} B/event (each read by the 1 other worker), "
          f"{a_after['deltas_sent'] + b_after['deltas_sent']} deltas")  # fmt: skip

    # a checkpoints, then is SIGKILLed; c takes its partitions over and adopts its checkpoint.
    time.sleep(2.5)  # two checkpoints of a's (--checkpoint-every 1s) hold the view
    a.kill()
    c = deployment.start_worker("c", extra=SHARE)
    c.wait_for(halves, timeout=120, what="c owning a's half")
    c_sharing = c.wait_for(lambda s: s["sharing"]["handovers_resumed"] > 0, timeout=60,
                           what="c resuming from a checkpoint")["sharing"]  # fmt: skip
    later = f"later-{deployment.run_id}"
    b_stats = b.stats()
    await publish(settings, [view(customer_on(b_stats, n), later)])
    on_c_later, _ = count_on(c, later)
    assert on_c_later == count_on(b, later)[0]
    await asyncio.sleep(3)  # more exchanges: nothing adopted is sent or merged again
    assert count_on(c, sku)[0] == on_a
    assert count_on(b, sku)[0] == on_a
    print(f"handover: c resumed at learning-topic offset {c_sharing['resumed_at_offset']}; "
          f"sharing on c: {c_sharing}")
