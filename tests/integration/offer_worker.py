"""The offer tests' worker and traffic (test_next_best_offer.py, test_offer_interaction.py):
an event-clock worker with no holdout and checkpoints every second, the settings to
publish to it, and the views that teach it that b goes with a."""

from __future__ import annotations

import uuid

import orjson

from streamcrm.config import Settings
from streamcrm.events import format_ts

from .conftest import Deployment, WorkerHandle

T0 = 1_790_000_000.0
EVENT_CLOCK = ("--clock", "event", "--holdout", "0", "--checkpoint-every", "1s")


def start(deployment: Deployment, name: str = "w1") -> tuple[WorkerHandle, Settings]:
    """An offer worker of ``deployment``, and settings that publish to its topics."""
    worker = deployment.start_worker(name, extra=EVENT_CLOCK)
    settings = Settings(
        broker=deployment.bootstrap, partitions=deployment.partitions, topics=deployment.topics
    )
    return worker, settings


def view(customer: str, sku: str, ts: float) -> tuple[str, bytes, bytes]:
    body = {"event_id": str(uuid.uuid4()), "type": "product_viewed", "customer_id": customer,
            "ts": format_ts(ts), "channel": "web", "sku": sku, "category": "shoes", "price": 30.0}  # fmt: skip
    return "browse", customer.encode(), orjson.dumps(body)


def cart(customer: str, sku: str, ts: float) -> tuple[str, bytes, bytes]:
    body = {"event_id": str(uuid.uuid4()), "type": "cart_item_added", "customer_id": customer,
            "ts": format_ts(ts), "channel": "web", "cart_id": f"k-{customer}", "sku": sku,
            "qty": 1, "unit_price": 30.0}  # fmt: skip
    return "cart", customer.encode(), orjson.dumps(body)


def teaching(shoppers: int) -> list[tuple[str, bytes, bytes]]:
    """Shoppers t0, t1, ... who look at a, then at b five seconds later."""
    return [
        event
        for i in range(shoppers)
        for event in (view(f"t{i}", "a", T0 + i), view(f"t{i}", "b", T0 + i + 5))
    ]
