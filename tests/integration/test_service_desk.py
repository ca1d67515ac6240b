"""The service desk through a real worker: an unanswered complaint's SLA breach is
published on the service topic and holds the customer's coupon back; coupon farmers in
the synthetic shop are flagged and get no coupon while flagged."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from streamcrm.events import format_ts
from streamcrm.synthetic import generate

from .conftest import Deployment, consume
from .test_abandoned_cart import LIVE, cart_add
from .test_metrics import scrape


def complaint_opened(customer: str, ts: float) -> bytes:
    return orjson.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "type": "complaint_opened",
            "customer_id": customer,
            "ts": format_ts(ts),
            "channel": "email",
            "complaint_id": "T-1",
        }
    )


async def test_an_unanswered_complaint_is_breached_and_holds_the_coupon_back(
    deployment: Deployment, producer: AIOKafkaProducer
) -> None:
    worker = deployment.start_worker("w1", extra=LIVE)
    now = time.time()
    # Opened 25 h ago and never answered: its 24 h first-reply SLA has passed.
    await producer.send(
        deployment.topics.service, complaint_opened("c-upset", now - 25 * 3600), key=b"c-upset"
    )
    for customer in ("c-upset", "c-calm"):
        await producer.send(deployment.topics.cart, cart_add(customer, now), key=customer.encode())
    await producer.flush()

    breaches = await consume(
        deployment.bootstrap, deployment.topics.service_out, expected=1, timeout=60, settle=2
    )
    [breach] = [orjson.loads(m.value) for m in breaches]
    assert breaches[0].key == b"c-upset"
    assert (breach["type"], breach["sla"], breach["phase"]) == (
        "sla_breached", "first_reply", "breached",
    )  # fmt: skip
    coupons = await consume(
        deployment.bootstrap, deployment.topics.coupons, expected=1, timeout=60, settle=4
    )
    assert [orjson.loads(m.value)["customer_id"] for m in coupons] == ["c-calm"]
    stats = worker.wait_for(
        lambda s: s["service"]["marketing_held"] == 1, what="the coupon stage held back"
    )
    assert stats["service"]["sla_breaches"] == 1
    assert stats["abandoned_cart"]["suppressed_by_reason"] == {"complaint_open": 1}
    state = worker.get("/customers/c-upset")
    assert state["complaints"]["open"][0]["reply_breached"] is True
    metrics = scrape(worker.base_url + "/metrics")
    assert metrics['streamcrm_service_outcomes_total{outcome="sla_breached_first_reply"}'] == 1
    assert metrics['streamcrm_service_outcomes_total{outcome="suppressed_complaint_open"}'] == 1


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def test_flagged_coupon_farmers_get_no_coupon_while_flagged(
    deployment: Deployment, producer: AIOKafkaProducer
) -> None:
    worker = deployment.start_worker("w1", extra=("--holdout", "0"))
    records = list(generate(20_000, seed=3, customers=400, farmer_share=0.05, coupon_share=0.08))
    for r in records:
        await producer.send(deployment.topic_of(r.topic_kind), r.value, key=r.key)
    await producer.flush()
    stats = worker.wait_for(
        lambda s: s["applied"] + s["duplicates"] == len(records), timeout=240, what="all applied"
    )
    assert stats["dead_letters"] == 0
    flagged = stats["service"]["anomaly_flags"]
    assert flagged > 0 and stats["service"]["incentives_withheld_by_flag"] > 0
    flags = [
        orjson.loads(m.value)
        for m in await consume(
            deployment.bootstrap, deployment.topics.service_out, expected=flagged, timeout=60
        )
    ]
    assert len(flags) == flagged and {f["type"] for f in flags} == {"anomaly_flagged"}
    farmers = {f["customer_id"] for f in flags if f["customer_id"].startswith("f")}
    assert farmers, "no farmer was flagged"
    coupons: list[dict[str, Any]] = [
        orjson.loads(m.value)
        for m in await consume(
            deployment.bootstrap, deployment.topics.coupons, expected=stats["coupons_issued"]
        )
    ]
    coded = [c for c in coupons if c["code"]]
    while_flagged = [
        (c["customer_id"], c["ts"])
        for c in coded
        for f in flags
        if f["customer_id"] == c["customer_id"]
        and _ts(f["ts"]) <= _ts(c["ts"]) < _ts(f["expires_at"])
    ]
    assert while_flagged == []
    print(f"flags {len(flags)}, farmers flagged {len(farmers)}, coded coupons {len(coded)}")
