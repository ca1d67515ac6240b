"""What an operator expects, through real workers: /ready turns 200 only once the tables
are recovered (and /stats never answers with an unrecovered count), and the decision
audit topic carries every decision, with the rules a child worker was given."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from streamcrm.config import Settings
from streamcrm.contract import validator
from streamcrm.decisions import CrmConfig
from streamcrm.rules import rules_from, rules_version
from streamcrm.tansu import free_port
from streamcrm.worker_process import WorkerProcess

from .conftest import Deployment, consume
from .test_abandoned_cart import cart_add


def answer(url: str) -> tuple[int, dict[str, Any]] | None:
    """(status, body), or None while nothing listens yet."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except OSError:
        return None


async def test_ready_turns_200_only_after_the_tables_are_recovered(
    deployment: Deployment, producer: AIOKafkaProducer
) -> None:
    first = deployment.start_worker("w1", redis=False)
    customers = [f"c-ready-{i}" for i in range(20)]
    for customer in customers:
        await producer.send(
            deployment.topics.cart, cart_add(customer, time.time()), key=customer.encode()
        )
    await producer.flush()
    first.wait_for(lambda s: s["applied"] == 20, what="20 carts applied")
    first.stop()

    second = deployment.start_worker("w2", redis=False, wait=False)
    seen_not_ready: list[dict[str, Any]] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert second.proc.poll() is None, second.log_tail()
        ready = answer(second.base_url + "/ready")
        stats = answer(second.base_url + "/stats")
        if stats is not None:
            code, body = stats
            # Never a count from before the recovery (which read as "customers: 0").
            assert (code, body["ready"]) == (503, False) or body["customers"] == 20, stats
        if ready is None:
            time.sleep(0.05)
            continue
        if ready[0] == 200:
            break
        assert ready[0] == 503 and ready[1]["ready"] is False, ready
        seen_not_ready.append(ready[1])
        time.sleep(0.05)
    else:
        raise AssertionError(f"/ready never turned 200: {second.log_tail()}")
    assert seen_not_ready, "the worker was never seen before its recovery"
    assert {b["status"] for b in seen_not_ready} <= {"recovering", "rebalancing"}
    assert ready[1] == {"ready": True, "status": "ready", "partitions": [0, 1, 2, 3]}
    stats = second.stats()
    assert (stats["customers"], stats["ready"]) == (20, True)
    assert stats["rules_version"] == rules_version(CrmConfig())
    assert answer(second.base_url + "/health") == (200, {"status": "ok"})


async def test_the_audit_topic_records_every_decision_under_the_rules_the_child_was_given(
    deployment: Deployment, producer: AIOKafkaProducer, tmp_path: Path
) -> None:
    """A worker run as demo, bench and replay --via-kafka run it (WorkerProcess), with a
    rule that has no flag: no message a day. Under the defaults each cart gets its
    coupon (verdict ok); here every decision is recorded as capped and none is sent."""
    crm = rules_from({
        "abandoned_cart": {"abandon_after": "1s", "stages": [{"name": "coupon", "after": "2s", "incentive": True}]},
        "contact": {"max_per_day": 0, "holdout_share": 0.0},
    })  # fmt: skip
    settings = replace(
        Settings(), broker=deployment.bootstrap, partitions=deployment.partitions,
        topics=deployment.topics, app_id=deployment.app_id, web_port=free_port(),
        redis_url=None, crm=crm, audit=True, log_format="json", log_level="info",
    )  # fmt: skip
    worker = WorkerProcess(settings, tmp_path)
    try:
        worker.wait_ready()
        customers = [f"c-audit-{i}" for i in range(3)]
        for customer in customers:
            await producer.send(
                settings.topics.cart, cart_add(customer, time.time()), key=customer.encode()
            )
        await producer.flush()
        # Each watched cart keeps one deadline after its stages: the attribution window's
        # close (it resolves the cart for the lift readout), so pending timers stay at 3.
        stats = worker.wait_until(
            lambda s: s["timer_fires"] >= 3, timeout_s=60, what="3 stages"
        )
        records = await consume(
            deployment.bootstrap, settings.topics.decisions, expected=3, settle=2
        )
        coupons = await consume(deployment.bootstrap, settings.topics.coupons, expected=0, settle=1)
    finally:
        worker.stop()
    assert stats["rules_version"] == rules_version(crm) != rules_version(CrmConfig())
    assert coupons == []
    every = [orjson.loads(r.value) for r in records]
    assert [r.key.decode() for r in records] == [b["customer_id"] for b in every]
    check = validator("decision_recorded")
    assert all(check.is_valid(body) for body in every), every
    # Each cart add is also an offer decision (offers have caps of their own, not the
    # marketing max_per_day): recorded with its verdict, under the same rules.
    assert {b["kind"] for b in every} <= {"abandoned_cart_stage", "next_best_offer"}
    assert all(b["rules_version"] == rules_version(crm) for b in every)
    bodies = [b for b in every if b["kind"] == "abandoned_cart_stage"]
    assert sorted(b["customer_id"] for b in bodies) == customers
    for body in bodies:
        assert (body["decision"]["stage"], body["decision"]["verdict"]) == ("coupon", "cap_24h")
        assert body["decision"]["inputs"]["cart_value"] == 120.0
    # --log-format json reached the child too: every line of its log is one JSON object.
    lines = [line for line in worker.log_path.read_text().splitlines() if line.strip()]
    assert lines
    for line in lines:
        assert isinstance(json.loads(line), dict), line
