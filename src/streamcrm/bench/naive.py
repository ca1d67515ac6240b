"""The naive Faust implementation the benchmark compares against.

Written the way Faust's documentation shows: one ``async for`` per event and a table
write per event, doing the same core work as the pipeline's ingest (decode, validate,
apply the customer transition, store the state). It exists only to be measured.

Run: ``python -m streamcrm.bench.naive BROKER PARTITIONS WEB_PORT APP_ID BROWSE CART ORDER``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import faust
from faust.web import Request, Response, View

from streamcrm.app import codecs
from streamcrm.app.factory import quiet_client_logs
from streamcrm.config import kafka_url
from streamcrm.events import InvalidEvent, decode
from streamcrm.state import apply


def create_naive_app(
    broker: str, partitions: int, web_port: int, app_id: str, topics: list[str]
) -> faust.App:
    codecs.register()
    quiet_client_logs()
    app = faust.App(
        app_id, broker=kafka_url(broker), store="memory://", topic_partitions=partitions,
        web_port=web_port, web_host="127.0.0.1", autodiscover=False,
        broker_rebalance_timeout=4, broker_session_timeout=10, broker_heartbeat_interval=1,
    )  # fmt: skip
    kinds = dict(zip(topics, ("browse", "cart", "order"), strict=True))
    source = app.topic(*topics, key_serializer="raw", value_serializer="raw")
    customers: Any = app.Table("customers", partitions=partitions)
    customers.key_serializer = "crm_utf8"
    customers.value_serializer = "crm_customer_v1"
    counts = {"events_in": 0, "dead_letters": 0}

    @app.agent(source)
    async def process(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            counts["events_in"] += 1
            try:
                ev = decode(message.value, topic_kind=kinds[message.topic], key=message.key)
            except InvalidEvent:
                counts["dead_letters"] += 1
                continue
            customers[ev.customer_id] = apply(customers.get(ev.customer_id), ev, time.time()).state

    @app.page("/stats")
    class Stats(View):
        async def get(self, request: Request) -> Response:
            return self.json(counts)

    return app


def main(argv: list[str]) -> None:
    broker, partitions, port, app_id, *topics = argv
    asyncio.set_event_loop(asyncio.new_event_loop())
    app = create_naive_app(broker, int(partitions), int(port), app_id, topics)
    faust.Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1:])
