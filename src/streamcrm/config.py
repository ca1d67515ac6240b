"""Settings: one frozen object, built once in ``cli.py`` from flags and environment.

Nothing else reads the environment, so tests and replays pass settings explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from streamcrm.decisions import CrmConfig
from streamcrm.erasure import DEFAULT_HOLD_S
from streamcrm.events import DEFAULT_MAX_RECORD_BYTES
from streamcrm.kafka_security import KafkaSecurity
from streamcrm.policies.abandoned_cart import Stage


@dataclass(frozen=True, slots=True)
class Topics:
    """Kafka topic names. They are part of the persisted contract (see schemas/README.md)."""

    browse: str = "storefront.browse"
    cart: str = "storefront.cart"
    order: str = "storefront.order"
    service: str = "storefront.service"  # complaints, flag clearances (the service desk)
    deadletter: str = "streamcrm.deadletter"
    coupons: str = "streamcrm.coupons"
    offers: str = "streamcrm.offers"
    profiles: str = "streamcrm.profiles"
    erasures: str = "streamcrm.erasures"  # customer_erased receipts (the privacy audit)
    service_out: str = "streamcrm.service"  # sla_breached, anomaly_flagged (for the desk)
    # Flash-sale announcements, keyed by campaign id: broadcast (every worker reads every
    # partition, outside the consumer group; app/campaigns.py), so not among inputs().
    campaigns: str = "storefront.campaigns"
    campaigns_out: str = "streamcrm.campaigns.out"  # flash_sale_notification, by customer
    pricing: str = "streamcrm.pricing"  # price_suggestion, keyed by SKU
    # Internal: per-SKU demand deltas from every worker, keyed by SKU (pricing/deltas.py).
    sku_demand: str = "streamcrm.sku-demand"
    # Every decision record with its inputs and the rules version; written only with
    # Settings.audit (--audit), so not among outputs().
    decisions: str = "streamcrm.decisions"

    def inputs(self) -> dict[str, str]:
        """Topic name -> topic kind, for the four co-partitioned input topics."""
        return {
            self.browse: "browse", self.cart: "cart", self.order: "order",
            self.service: "service",
        }  # fmt: skip

    def outputs(self) -> tuple[str, ...]:
        return (
            self.deadletter, self.coupons, self.offers, self.profiles, self.erasures,
            self.service_out, self.campaigns_out, self.pricing,
        )  # fmt: skip

    def broadcast(self) -> tuple[str, ...]:
        """Inputs every worker reads whole (not co-partitioned, not in the read horizon)."""
        return (self.campaigns,)

    def internal(self) -> tuple[str, ...]:
        """Topics between workers, created with the others (same partition count)."""
        return (self.sku_demand,)

    def prefixed(self, prefix: str) -> Topics:
        """Every topic renamed ``<prefix><name>``: one run's own topics on a shared broker.

        >>> Topics().prefixed("t1.").erasures
        't1.streamcrm.erasures'
        """
        return Topics(**{f.name: prefix + getattr(self, f.name) for f in fields(self)})


@dataclass(frozen=True, slots=True)
class Drills:
    """Fault injection for drills and tests, off by default; set only through the
    environment (``STREAMCRM_DRILL_*``, read in cli.py), never in production."""

    # The ingest loop crashes (as on a bug) on any batch holding a record whose bytes
    # contain this marker: after its writes were sent, before its offsets are acked
    # (STREAMCRM_DRILL_CRASH_MARKER).
    crash_marker: bytes | None = None
    # Every record sent (changelog and outputs) first waits this long: a slow producer
    # (STREAMCRM_DRILL_SEND_DELAY_S).
    send_delay_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a worker needs. Defaults suit real Kafka; the demo and tests shorten timeouts."""

    broker: str = "kafka://127.0.0.1:9092"
    # TLS / SASL of every Kafka client (kafka_security.py); PLAINTEXT by default.
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)
    # May hold a password (redis://user:pw@host): never logged whole (redaction.py).
    redis_url: str | None = field(default="redis://127.0.0.1:6379/0", repr=False)
    app_id: str = "streamcrm"
    partitions: int = 8
    replication_factor: int = 1
    topics: Topics = field(default_factory=Topics)
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    data_dir: str = "./streamcrm-data"
    # The most events decided in one batch; a batch is whatever has arrived, up to this.
    batch_size: int = 1000
    # How many recent event ids each customer remembers to drop redeliveries.
    dedupe_window: int = 64
    recent_views: int = 20
    redis_key_prefix: str = "streamcrm:customer:"
    # Short group-join timeouts: joining a group on Tansu otherwise waits ~30 s.
    fast_rebalance: bool = False
    log_level: str = "warning"
    log_format: str = "text"  # or "json": one JSON object per line (streamcrm.logs)
    # Publish every decision record to topics.decisions (app/audit.py).
    audit: bool = False
    # "wall": deadlines fire on the wall clock (live); "event": on event time (replays,
    # simulated traffic), as the watermark passes them.
    clock: str = "wall"
    crm: CrmConfig = field(default_factory=CrmConfig)
    sweep_interval_s: float = 0.25
    # Longest a fetch waits for data when there is none. Faust hard-codes 1,500 ms, which
    # on Tansu added ~360 ms to every event. At 1,330 events/s (one instrumented run each):
    # 50 ms gave p50 55 / p99 186 ms, 20 ms 64 / 213, 10 ms 61 / 159: within the noise.
    fetch_max_wait_ms: int = 50
    # How often the population learners are checkpointed into their changelog table.
    checkpoint_every_s: float = 30.0
    # Population learners shared between workers through the learning topic (issue 18;
    # README, "How state and learning are distributed"); off: each learns on its own.
    share_learning: bool = False
    share_every_s: float = 5.0  # how often a worker publishes its delta and merges others'
    # Price suggestions (issue 19): demand deltas re-keyed by SKU through topics.sku_demand,
    # the owner of each SKU's partition suggests (app/pricing.py); off: neither.
    price_suggestions: bool = True
    # Input records over this size are dead-lettered (too_large) before parsing.
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    # Wall clock: events stamped further ahead of the worker's clock are dead-lettered
    # (ts_out_of_range): a far-future ts would otherwise hold a customer's time hostage.
    max_future_skew_s: float = 86_400.0
    # Redis convergence (app/resync.py): customers per second rewritten from the table
    # after a start, a rebalance or Redis coming back (a worker owning N customers
    # converges N / resync_rate seconds after Redis answers); probe period while Redis is
    # up, and the cap of its backoff while down; staged snapshots retried at least every
    # redis_retry_s; SIGTERM waits at most shutdown_flush_s for them.
    resync_rate: float = 2000.0
    redis_probe_s: float = 1.0
    redis_probe_max_s: float = 5.0
    redis_retry_s: float = 1.0
    shutdown_flush_s: float = 5.0
    # Static group membership (Kafka's group.instance.id, KIP-345): a worker restarted with
    # the same id takes its partitions back without a rebalance. Trade-off: a member with
    # an id does not leave the group when it stops, so a worker stopped for good keeps
    # its partitions unread until the session timeout ends. One id per worker, stable
    # across its restarts (e.g. the pod name); None: dynamic membership.
    group_instance_id: str | None = None
    # How long the group waits for a silent member before giving its partitions away:
    # the floor of recovery after a crash (SIGKILL). None: 10 s with fast_rebalance, else
    # Faust's 60 s. Shorter cuts recovery (on Tansu it also shortens every join), but a
    # worker whose heartbeats stall that long (CPU starvation, a paused VM) is expelled
    # and its partitions move. Apache Kafka refuses less than its
    # group.min.session.timeout.ms (6 s by default). At least 3 heartbeats (1 s with
    # fast_rebalance, else 3 s), at most the request timeout (90 s).
    session_timeout_s: float | None = None
    drills: Drills = field(default_factory=Drills)
    # Bearer token of /customers/<id> (STREAMCRM_WEB_TOKEN); None: that endpoint is off.
    web_token: str | None = field(default=None, repr=False)
    # retention.ms of the dead-letter topic when streamcrm creates it; None: the broker's.
    deadletter_retention_s: float | None = None
    # How long an erased customer's marker (id, request time, input offsets) is kept to
    # drop their late or redelivered events (streamcrm.erasure), then deleted too.
    erasure_hold_s: float = DEFAULT_HOLD_S


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``24h``, ``7d`` -> seconds.

    >>> parse_duration("30m"), parse_duration("1.5h"), parse_duration("45")
    (1800.0, 5400.0, 45.0)
    """
    text = text.strip().lower()
    unit = _UNITS.get(text[-1:]) if text else None
    number = text[:-1] if unit else text
    try:
        value = float(number) * (unit or 1.0)
    except ValueError:
        msg = f"{text!r} is not a duration (examples: 90s, 30m, 24h, 7d)"
        raise ValueError(msg) from None
    if value < 0:
        msg = f"duration {text!r} is negative"
        raise ValueError(msg)
    return value


def parse_stages(spec: str) -> tuple[Stage, ...]:
    """``name:after[:incentive]`` items, comma-separated, in time order.

    >>> [(s.name, s.after, s.incentive) for s in parse_stages("reminder:1h,coupon:24h:incentive")]
    [('reminder', 3600.0, False), ('coupon', 86400.0, True)]
    """
    stages = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        parts = item.split(":")
        if len(parts) not in {2, 3} or (len(parts) == 3 and parts[2] != "incentive"):
            msg = f"stage {item!r} is not name:after[:incentive] (e.g. coupon:24h:incentive)"
            raise ValueError(msg)
        stages.append(Stage(parts[0], parse_duration(parts[1]), len(parts) == 3))
    return tuple(stages)


def kafka_url(bootstrap: str) -> str:
    """Turn ``host:port[,host:port]`` into Faust's ``kafka://`` broker URL.

    >>> kafka_url("127.0.0.1:9092,127.0.0.1:9093")
    'kafka://127.0.0.1:9092;kafka://127.0.0.1:9093'
    >>> kafka_url("kafka://broker:9092")
    'kafka://broker:9092'
    """
    parts = [p.strip() for p in bootstrap.replace(";", ",").split(",") if p.strip()]
    return ";".join(p if "://" in p else f"kafka://{p}" for p in parts)


def bootstrap_servers(broker: str) -> str:
    """The inverse of :func:`kafka_url`, for aiokafka clients.

    >>> bootstrap_servers("kafka://a:1;kafka://b:2")
    'a:1,b:2'
    """
    return ",".join(p.split("://", 1)[-1] for p in broker.split(";") if p)
