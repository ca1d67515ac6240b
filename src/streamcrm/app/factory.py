"""``create_app(settings)``: the Faust app, its topics, tables, agents and web pages.

No module-level app: each call builds a fresh one bound to the settings it is given,
so tests and the demo can run several side by side.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from streamcrm.app import codecs
from streamcrm.app.agents import attach_agents, partition_of
from streamcrm.app.erasure import erased_snapshot_keys
from streamcrm.app.heap import attach_heap_care
from streamcrm.app.outbox import Outbox
from streamcrm.app.pricing import WorkerPricing, attach_pricing
from streamcrm.app.resync import SnapshotSync, attach_snapshot_sync
from streamcrm.app.sharing import WorkerSharing
from streamcrm.app.stats import WorkerStats
from streamcrm.app.web import attach_pages
from streamcrm.config import Settings, kafka_url
from streamcrm.kafka_security import faust_credentials
from streamcrm.rules import rules_version
from streamcrm.serving import SnapshotWriter

log = logging.getLogger(__name__)

# Table names are part of the persisted contract: the changelog topic is
# "<app_id>-<table>-changelog". A new state layout gets a new version suffix.
CUSTOMERS_TABLE = "customers-v1"
LEARNERS_TABLE = "learners-v2"  # v2: JSON records per partition, one per SKU (no pickle)
ERASURES_TABLE = "erasures-v1"  # markers of erased customers, kept for the erasure hold
PRICING_TABLE = "pricing-v1"  # per-SKU demand (pricing/demand.py), keyed by SKU


@dataclass(slots=True)
class Runtime:
    """What the agents share at run time (the app's own objects, not globals)."""

    settings: Settings
    stats: WorkerStats
    snapshots: SnapshotWriter | None
    outbox: Outbox
    sync: SnapshotSync | None = None  # probes, retries and resyncs the snapshot (resync.py)
    rules_version: str = ""  # of settings.crm (streamcrm.rules): on /stats and audit records
    sharing: WorkerSharing | None = None  # --share-learning (app/sharing.py)
    pricing: WorkerPricing | None = None  # price suggestions (app/pricing.py)


def create_app(settings: Settings) -> faust.App:
    codecs.register()
    quiet_client_logs()
    limit_fetch_wait(settings.fetch_max_wait_ms)
    timeouts: dict[str, Any] = {}
    if settings.fast_rebalance:
        # Joining a group on Tansu otherwise waits ~30 s (DESIGN.md).
        timeouts = {
            "broker_rebalance_timeout": 4,
            "broker_session_timeout": 10,
            "broker_heartbeat_interval": 1,
        }
    if settings.session_timeout_s is not None:
        timeouts["broker_session_timeout"] = settings.session_timeout_s
    app = faust.App(
        settings.app_id,
        broker=kafka_url(settings.broker),
        broker_credentials=faust_credentials(settings.kafka_security),
        store="memory://",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        web_host=settings.web_host,
        web_port=settings.web_port,
        datadir=settings.data_dir,
        autodiscover=False,
        # Tables live in memory and are restored from the changelog, so a local offset past
        # the broker's end can only mean the broker's reported end is short, as Tansu's is
        # (app/catchup.py: ListOffsets "latest" is the last batch's base offset + 1): the
        # check crashed workers in rebalances (ConsistencyError; 2 in one verify run).
        recovery_consistency_check=False,
        consumer_group_instance_id=settings.group_instance_id,
        **timeouts,
    )
    runtime = Runtime(
        settings=settings,
        stats=WorkerStats(),
        snapshots=SnapshotWriter(settings.redis_url) if settings.redis_url else None,
        outbox=Outbox(lambda: _kafka_producer(app), delay_s=settings.drills.send_delay_s),
        rules_version=rules_version(settings.crm),
    )
    inputs = app.topic(
        *settings.topics.inputs(),
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
    )
    customers = _table(
        app,
        settings,
        CUSTOMERS_TABLE,
        "crm_customer_v1",
        "Per-customer CustomerState (streamcrm.state), changelog-backed.",
    )
    learners = _table(
        app,
        settings,
        LEARNERS_TABLE,
        "raw",
        "Checkpoints of the population learners as data, one copy per owned partition.",
    )
    markers = _table(
        app,
        settings,
        ERASURES_TABLE,
        "raw",
        "Erased customers' markers (streamcrm.erasure): id, request time, input offsets.",
    )
    processor = attach_agents(
        app, runtime, inputs=inputs, customers=customers, learners=learners, markers=markers
    )
    if settings.price_suggestions:
        demand = _table(
            app, settings, PRICING_TABLE, "raw",
            "Per-SKU demand of price suggestions (pricing/demand.py) as JSON, keyed by SKU.",
        )  # fmt: skip
        runtime.pricing = attach_pricing(app, runtime, processor, demand)
    runtime.sync = attach_snapshot_sync(app, runtime, customers)
    if runtime.sync is not None:
        runtime.sync.erased = erased_snapshot_keys(
            markers, customers.data, runtime, lambda cid: partition_of(cid, settings.partitions)
        )
    attach_pages(app, runtime, customers, processor)
    attach_heap_care(app)

    app.streamcrm = runtime  # type: ignore[attr-defined]
    return app


def _kafka_producer(app: faust.App) -> Any:
    """The aiokafka producer inside Faust's (started after the app is built, so looked up
    at send time)."""
    producer: Any = app.producer
    return producer._ensure_producer()


def _table(app: faust.App, settings: Settings, name: str, value_codec: str, help_text: str) -> Any:
    # Faust derives table serializers from model types; ours are plain codecs, so the
    # changelog topic is declared here with them (recovery decodes through this topic).
    changelog = app.topic(
        f"{settings.app_id}-{name}-changelog",
        key_serializer="crm_utf8",
        value_serializer=value_codec,
        partitions=settings.partitions,
        compacting=True,
        deleting=False,
        acks=False,
        internal=True,
    )
    table: Any = app.Table(
        name, partitions=settings.partitions, changelog_topic=changelog, help=help_text
    )
    table.key_serializer = "crm_utf8"
    table.value_serializer = value_codec
    return table


def quiet_client_logs() -> None:
    """Per-message debug calls (aiokafka's, and Faust's ``send:`` line in topics.py) cost
    4-14% of a worker's time even when nothing prints them (DESIGN.md, py-spy here)."""
    for name in ("aiokafka", "kafka", "faust.topics", "faust.transport"):
        logging.getLogger(name).setLevel(logging.WARNING)


_FETCH_WAIT_PATCHED: list[int] = []


def limit_fetch_wait(ms: int) -> None:
    """Cap how long a fetch may wait for data (Faust hard-codes 1,500 ms).

    Kafka answers a fetch as soon as one byte is there, so this only bounds idle polls;
    the Tansu broker waits out the whole window instead, which cost ~360 ms p50 latency
    per event (measured: 1,500 ms -> p50 361 ms, 100 ms -> p50 2.7 ms).
    """
    if _FETCH_WAIT_PATCHED:
        _FETCH_WAIT_PATCHED[0] = ms
        return
    _FETCH_WAIT_PATCHED.append(ms)
    thread_cls = faust_aiokafka.AIOKafkaConsumerThread
    create = thread_cls._create_worker_consumer

    def create_with_short_wait(self: Any, transport: Any) -> Any:
        consumer = create(self, transport)
        consumer._fetch_max_wait_ms = _FETCH_WAIT_PATCHED[0]  # read by consumer.start()
        return consumer

    thread_cls._create_worker_consumer = create_with_short_wait  # type: ignore[method-assign]
