"""Flash sales through a real worker: a campaign announced on the broadcast topic reaches
the interested gold customer as an early-access notice at its tier's offset, and no one
who showed no interest; a worker restart between the announcement and the notice keeps
the schedule (the notice is a deadline in the customer's state)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from streamcrm.events import format_ts

from .conftest import Deployment, consume
from .test_abandoned_cart import LIVE

H = 3600.0


def _event(customer: str, kind: str, ts: float, **body: Any) -> bytes:
    return orjson.dumps({
        "event_id": str(uuid.uuid4()), "type": kind, "customer_id": customer,
        "ts": format_ts(ts), "channel": "web", **body,
    })  # fmt: skip


def announcement(campaign: str, starts_at: float, now: float) -> bytes:
    return orjson.dumps({
        "event_id": str(uuid.uuid4()), "type": "flash_sale_announced", "ts": format_ts(now),
        "campaign_id": campaign, "skus": ["sku-sale"], "starts_at": format_ts(starts_at),
        "ends_at": format_ts(starts_at + 4 * H), "discount_percent": 30,
        "early_access": [{"tier": "platinum", "before_s": 2 * H}, {"tier": "gold", "before_s": H}],
    })  # fmt: skip


async def test_gold_customer_gets_early_access_at_its_offset_across_a_restart(
    deployment: Deployment, producer: AIOKafkaProducer
) -> None:
    args = (*LIVE, "--holdout", "0")
    worker = deployment.start_worker("w1", extra=args)
    t = deployment.topics
    now = time.time()
    line = {"sku": "sku-sale", "qty": 1, "unit_price": 600.0, "category": "tv"}
    # c-gold bought the sale's SKU (600: the gold tier); c-other viewed something else.
    await producer.send(t.order, _event("c-gold", "order_placed", now - 60, order_id="o1",
                        lines=[line], total=600.0, currency="EUR"), key=b"c-gold")  # fmt: skip
    await producer.send(t.browse, _event("c-other", "product_viewed", now - 60, sku="sku-else",
                        category="books", price=9.0), key=b"c-other")  # fmt: skip
    await producer.flush()
    worker.wait_for(lambda s: s["applied"] == 2, what="both events applied")
    # Bad announcements are dead-lettered with their reason, never crash the worker.
    await producer.send(t.campaigns, b"{not json", key=b"fs-bad")
    # The sale starts in 1 h + 40 s: the gold notice is due 40 s from now.
    starts_at = time.time() + H + 40
    await producer.send_and_wait(t.campaigns, announcement("fs-1", starts_at, now), key=b"fs-1")
    worker.wait_for(
        lambda s: s["flash_sales"]["enrolled"] == 1 and s["dead_letters"] == 1,
        what="c-gold enrolled, the bad announcement dead-lettered",
    )
    state = worker.get("/customers/c-gold")
    assert [n["kind"] for n in state["flash"]["pending"]] == ["early_access", "last_chance"]
    assert worker.get("/customers/c-other")["flash"] is None

    worker.stop()  # the deadline lives in the customer's state: it survives the restart
    restarted = deployment.start_worker("w2", extra=args)
    records = await consume(
        deployment.bootstrap, t.campaigns_out, expected=1, timeout=120, settle=3
    )
    bodies = [orjson.loads(r.value) for r in records]
    assert [(b["customer_id"], b["notice"]) for b in bodies] == [("c-gold", "early_access")]
    [notice] = bodies
    assert notice["ts"] == format_ts(starts_at - H)
    assert notice["reason"] == {"rule": "early_access_gold", "tier": "gold", "interest": "bought",
                                "items": ["sku-sale"]}  # fmt: skip
    stats = restarted.wait_for(
        lambda s: s["flash_sales"]["notifications"] == 1, what="the notice counted"
    )
    # The restarted worker read the campaign again and found c-gold enrolled already.
    assert stats["flash_sales"]["enrolled"] == 0
    dead = [orjson.loads(r.value) for r in await consume(
        deployment.bootstrap, t.deadletter, expected=1, timeout=10, settle=1)]  # fmt: skip
    # Each start reads the campaigns again: a bad one is dead-lettered again, same id.
    assert {(d["event_id"], d["reason"]) for d in dead} == {(dead[0]["event_id"], "invalid_json")}
