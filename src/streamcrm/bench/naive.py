"""The naive Faust implementation the benchmark compares against.

The same work as the pipeline (decode, validate, customer state, abandoned-cart timers,
models and decisions, coupons/offers/profile events/dead letters out, Redis snapshot),
written the way Faust's documentation shows: one ``async for`` per event, a table write
per event (so a changelog record per event), ``await topic.send`` per output, one Redis
write per event, and a timer that scans the table for due deadlines. It reuses the pure
decision functions, so the two differ only in how data moves in and out. It exists only
to be measured.

Run: ``python -m streamcrm.bench.naive BROKER PARTITIONS PORT APP_ID redis|- BROWSE CART ORDER``
(outputs go to ``<APP_ID>.<name>`` topics; ``redis``: the snapshot goes to ``REDIS_URL``,
``-`` runs without it; Kafka security from the ``KAFKA_*`` environment, as the worker's).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

import faust
import orjson
import redis.asyncio as aioredis
from faust.web import Request, Response, View

from streamcrm.app import codecs
from streamcrm.app.agents import partition_of
from streamcrm.app.factory import limit_fetch_wait, quiet_client_logs
from streamcrm.config import Settings, kafka_url
from streamcrm.decisions import CrmConfig, Learners, after_event, fire_due, next_due
from streamcrm.events import InvalidEvent, decode
from streamcrm.ingest import Record, dead_letter
from streamcrm.kafka_security import KafkaSecurity, faust_credentials, from_env
from streamcrm.learning.churn import ChurnModel
from streamcrm.protocol import TOPIC_OF, Step
from streamcrm.snapshot import snapshot_fields, snapshot_key
from streamcrm.state import apply


def create_naive_app(  # noqa: PLR0915 - written flat, as in Faust's docs
    broker: str,
    partitions: int,
    web_port: int,
    app_id: str,
    redis_url: str | None,
    topics: list[str],
    security: KafkaSecurity,
) -> faust.App:
    codecs.register()
    quiet_client_logs()
    # The same fetch cap as the worker: without it Tansu holds every fetch 1.5 s.
    limit_fetch_wait(Settings().fetch_max_wait_ms)
    app = faust.App(
        app_id, broker=kafka_url(broker), store="memory://", topic_partitions=partitions,
        broker_credentials=faust_credentials(security),
        web_port=web_port, web_host="127.0.0.1", autodiscover=False,
        broker_rebalance_timeout=4, broker_session_timeout=10, broker_heartbeat_interval=1,
    )  # fmt: skip
    kinds = dict(zip(topics, ("browse", "cart", "order"), strict=True))
    source = app.topic(*topics, key_serializer="raw", value_serializer="raw")
    # One output topic per TOPIC_OF destination: every event a decision emits is sent, as
    # the worker sends it (a type missing here raised KeyError and restarted the agent).
    outputs = {
        name: app.topic(f"{app_id}.{name}", key_serializer="raw", value_serializer="raw")
        for name in ("deadletter", *sorted(set(TOPIC_OF.values()) - {"deadletter"}))
    }
    deadletter = outputs["deadletter"]
    customers: Any = app.Table("customers", partitions=partitions)
    customers.key_serializer = "crm_utf8"
    customers.value_serializer = "crm_customer_v1"
    crm = CrmConfig(offer_exposure=True)  # the worker's offers carry their exposure too
    learners = Learners(churn=ChurnModel(horizon_s=crm.churn_horizon_s))
    redis = aioredis.Redis.from_url(redis_url) if redis_url else None
    counts = {"events_in": 0, "dead_letters": 0, "coupons_issued": 0, "offers_emitted": 0,
              "profile_events": 0}  # fmt: skip

    counted = {"coupon_issued": "coupons_issued", "next_best_offer": "offers_emitted",
               "customer_profile_updated": "profile_events"}  # fmt: skip

    async def emit(customer_id: str, step: Step) -> None:
        key = customer_id.encode()
        for event in step.emitted:
            if event.type in counted:
                counts[counted[event.type]] += 1
            await outputs[TOPIC_OF[event.type]].send(key=key, value=orjson.dumps(event.body))

    @app.agent(source)
    async def process(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            counts["events_in"] += 1
            now = time.time()
            try:
                ev = decode(message.value, topic_kind=kinds[message.topic], key=message.key)
            except InvalidEvent as error:
                counts["dead_letters"] += 1
                record = Record(message.topic, message.partition, message.offset,
                                message.key, message.value)  # fmt: skip
                letter = dead_letter(record, error, now)
                await deadletter.send(key=message.key, value=orjson.dumps(letter))
                continue
            before = customers.get(ev.customer_id)
            transition = apply(before, ev, now)
            if not transition.applied:
                continue
            step = after_event(before, transition.state, ev, crm, learners)
            state = step.state
            customers[ev.customer_id] = state
            await emit(ev.customer_id, step)
            if redis is not None:
                await redis.hset(snapshot_key(ev.customer_id), mapping=snapshot_fields(state, now))  # type: ignore[arg-type]

    @app.timer(0.25)  # type: ignore[untyped-decorator]
    async def fire_deadlines() -> None:
        now = time.time()
        for customer_id in list(customers.keys()):
            # Read it now, not from the snapshot the loop started with: the agent runs
            # between this loop's awaits, and firing a stale state would undo its writes.
            state = customers.data.get(customer_id)
            due = None if state is None else next_due(state, crm)
            if state is None or due is None or due > now:
                continue
            step = fire_due(state, now, crm, learners)
            fired = step.state
            # Outside an agent Faust cannot tell the partition (no current event): name it.
            customers.data[customer_id] = fired
            customers.send_changelog(partition_of(customer_id, partitions), customer_id, fired)
            await emit(customer_id, step)
            if redis is not None:
                await redis.hset(snapshot_key(customer_id), mapping=snapshot_fields(fired, now))  # type: ignore[arg-type]

    @app.page("/stats")
    class Stats(View):
        async def get(self, request: Request) -> Response:
            return self.json(counts)

    return app


def main(argv: list[str]) -> None:
    broker, partitions, port, app_id, redis_url, *topics = argv
    asyncio.set_event_loop(asyncio.new_event_loop())
    redis = None if redis_url == "-" else os.environ["REDIS_URL"]
    security = from_env(os.environ)
    app = create_naive_app(broker, int(partitions), int(port), app_id, redis, topics, security)
    faust.Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1:])
