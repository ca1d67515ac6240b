"""The command line's flags, each with the environment variable it falls back to.

Definitions only (argparse); turning them into :class:`~streamcrm.config.Settings` is
:mod:`streamcrm.cli`'s.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import fields
from typing import Any

from streamcrm import kafka_security as ks
from streamcrm.config import Topics
from streamcrm.learning.candidates import MAX_SKUS


class UsageError(Exception):
    """A problem the user can fix; printed as one line."""


def _env(name: str, default: Any) -> Any:
    return os.environ.get(name, default)


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        msg = f"{name}={raw!r} is not an integer"
        raise UsageError(msg) from None


def _add_broker_flags(p: argparse.ArgumentParser, *, embedded_default: bool = False) -> None:
    default = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    hint = "default: embedded Tansu broker" if embedded_default else "default 127.0.0.1:9092"
    p.add_argument(
        "--broker",
        default=default,
        help=f"Kafka bootstrap servers host:port[,host:port] (env KAFKA_BOOTSTRAP_SERVERS; {hint})",
    )
    p.add_argument(
        "--partitions",
        type=int,
        default=_int_env("STREAMCRM_PARTITIONS", 8),
        help="partitions of every topic; the three inputs must match (env STREAMCRM_PARTITIONS, default 8)",
    )
    _add_kafka_security_flags(p)
    defaults = Topics()
    for kind in (f.name for f in fields(Topics)):  # one flag per topic: --topic-<name>
        env = f"STREAMCRM_TOPIC_{kind.upper()}"
        p.add_argument(
            f"--topic-{kind.replace('_', '-')}",
            default=_env(env, getattr(defaults, kind)),
            help=f"topic name (env {env}, default {getattr(defaults, kind)})",
        )


def _add_kafka_security_flags(p: argparse.ArgumentParser) -> None:
    """TLS and SASL of every Kafka client (kafka_security.py). The password has no flag,
    so it never shows in ``ps``: KAFKA_SASL_PASSWORD or a file."""
    p.add_argument(
        "--security-protocol",
        type=str.upper,
        choices=ks.PROTOCOLS,
        default=_env(ks.ENV_PROTOCOL, "PLAINTEXT").upper(),
        help=f"Kafka security protocol (env {ks.ENV_PROTOCOL}, default PLAINTEXT)",
    )
    p.add_argument(
        "--sasl-mechanism",
        type=str.upper,
        choices=ks.MECHANISMS,
        default=_env(ks.ENV_MECHANISM, "PLAIN").upper(),
        help=f"SASL mechanism for SASL_PLAINTEXT / SASL_SSL (env {ks.ENV_MECHANISM}, default PLAIN)",
    )
    p.add_argument(
        "--sasl-username",
        default=_env(ks.ENV_USERNAME, None),
        help=f"SASL user (env {ks.ENV_USERNAME}); the password comes from env "
        f"{ks.ENV_PASSWORD} or --sasl-password-file, never a flag",
    )
    p.add_argument(
        "--sasl-password-file",
        metavar="PATH",
        default=_env(ks.ENV_PASSWORD_FILE, None),
        help=f"file whose first line is the SASL password (env {ks.ENV_PASSWORD_FILE})",
    )
    for flag, env, what in (
        (
            "--ssl-ca-file",
            ks.ENV_CA_FILE,
            "CA certificate(s) that signed the brokers' (PEM); default: the system's CAs",
        ),
        (
            "--ssl-cert-file",
            ks.ENV_CERT_FILE,
            "client certificate (PEM), for brokers that require one",
        ),
        ("--ssl-key-file", ks.ENV_KEY_FILE, "the client certificate's private key (PEM)"),
    ):
        p.add_argument(flag, metavar="PATH", default=_env(env, None), help=f"{what} (env {env})")


def _add_redis_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--redis-url",
        default=_env("REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="Redis for the customer snapshot (env REDIS_URL, default redis://127.0.0.1:6379/0)",
    )
    p.add_argument("--no-redis", action="store_true", help="run without the Redis snapshot")


def _add_worker_flags(worker: argparse.ArgumentParser) -> None:
    _add_broker_flags(worker)
    _add_redis_flags(worker)
    worker.add_argument(
        "--app-id",
        default=_env("STREAMCRM_APP_ID", "streamcrm"),
        help="Faust app id = consumer group and changelog prefix (env STREAMCRM_APP_ID)",
    )
    worker.add_argument(
        "--web-host",
        default=_env("STREAMCRM_WEB_HOST", "127.0.0.1"),
        help="bind address of /stats (env STREAMCRM_WEB_HOST, default 127.0.0.1)",
    )
    worker.add_argument(
        "--web-port",
        type=int,
        default=_int_env("STREAMCRM_WEB_PORT", 6066),
        help="port of /stats (env STREAMCRM_WEB_PORT, default 6066)",
    )
    worker.add_argument(
        "--data-dir",
        default=_env("STREAMCRM_DATA_DIR", "./streamcrm-data"),
        help="Faust data dir, one per worker (env STREAMCRM_DATA_DIR)",
    )
    worker.add_argument(
        "--batch-size",
        type=int,
        default=_int_env("STREAMCRM_BATCH_SIZE", 1000),
        help="max events per processing batch (env STREAMCRM_BATCH_SIZE)",
    )
    worker.add_argument(
        "--fast-rebalance",
        action="store_true",
        default=_env("STREAMCRM_FAST_REBALANCE", "") == "1",
        help="short group timeouts, for Tansu and tests (env STREAMCRM_FAST_REBALANCE=1)",
    )
    worker.add_argument(
        "--log-format",
        default=_env("STREAMCRM_LOG_FORMAT", "text"),
        choices=["text", "json"],
        help="log lines as text or as one JSON object each (env STREAMCRM_LOG_FORMAT, default text)",
    )
    worker.add_argument(
        "--audit",
        action="store_true",
        default=_env("STREAMCRM_AUDIT", "") == "1",
        help="also publish every decision record, with its inputs and the rules version, "
        "to the audit topic (--topic-decisions) (env STREAMCRM_AUDIT=1; default off)",
    )
    worker.add_argument(
        "--log-level",
        default=_env("STREAMCRM_LOG_LEVEL", "warning"),
        choices=["debug", "info", "warning", "error"],
        help="log level (env STREAMCRM_LOG_LEVEL, default warning)",
    )

    worker.add_argument(
        "--group-instance-id",
        default=_env("STREAMCRM_GROUP_INSTANCE_ID", None),
        help="static group membership: a stable id per worker, so a restart takes its "
        "partitions back without a rebalance (env STREAMCRM_GROUP_INSTANCE_ID; default none)",
    )

    worker.add_argument(
        "--session-timeout",
        default=_env("STREAMCRM_SESSION_TIMEOUT", None),
        help="how long the group waits for a silent worker, the floor of crash recovery; "
        "shorter recovers sooner but expels a worker stalled that long (env "
        "STREAMCRM_SESSION_TIMEOUT; default 10s with --fast-rebalance, else 60s)",
    )

    _add_decision_flags(worker)
    worker.add_argument(
        "--max-record-bytes",
        type=int,
        default=_int_env("STREAMCRM_MAX_RECORD_BYTES", 256 * 1024),
        help="larger input records are dead-lettered as too_large (env STREAMCRM_MAX_RECORD_BYTES, default 262144)",
    )
    worker.add_argument(
        "--max-future-skew",
        default=_env("STREAMCRM_MAX_FUTURE_SKEW", "1d"),
        help="wall clock: events stamped further ahead of now are dead-lettered as ts_out_of_range (env STREAMCRM_MAX_FUTURE_SKEW, default 1d)",
    )
    worker.add_argument(
        "--deadletter-retention",
        default=_env("STREAMCRM_DEADLETTER_RETENTION", None),
        help="how long the dead-letter topic keeps records (they hold the original bytes of "
        "bad input), set as retention.ms when streamcrm creates the topic, e.g. 7d (env "
        "STREAMCRM_DEADLETTER_RETENTION; default: the broker's retention)",
    )
    worker.add_argument(
        "--checkpoint-every",
        default=_env("STREAMCRM_CHECKPOINT_EVERY", "30s"),
        help="how often learners are checkpointed to their changelog (env STREAMCRM_CHECKPOINT_EVERY, default 30s)",
    )
    worker.add_argument(
        "--share-learning",
        action="store_true",
        default=_env("STREAMCRM_SHARE_LEARNING", "") == "1",
        help="share the population learners with the other workers through the learning "
        "topic <app-id>-learning (env STREAMCRM_SHARE_LEARNING=1; default off)",
    )
    worker.add_argument(
        "--no-price-suggestions",
        action="store_true",
        default=_env("STREAMCRM_PRICE_SUGGESTIONS", "1") == "0",
        help="do not count demand per SKU or suggest prices (no records to the sku-demand "
        "topic or the pricing table; env STREAMCRM_PRICE_SUGGESTIONS=0; default on)",
    )
    worker.add_argument(
        "--share-every",
        default=_env("STREAMCRM_SHARE_EVERY", "5s"),
        help="how often a sharing worker publishes what it learned and merges the others' "
        "(env STREAMCRM_SHARE_EVERY, default 5s)",
    )
    worker.add_argument(
        "--erasure-hold",
        default=_env("STREAMCRM_ERASURE_HOLD", "7d"),
        help="how long an erased customer's id is kept to drop their late or redelivered "
        "events, then deleted (env STREAMCRM_ERASURE_HOLD, default 7d)",
    )
    worker.add_argument(
        "--resync-rate",
        type=float,
        default=_env("STREAMCRM_RESYNC_RATE", "2000"),  # a string: argparse applies type
        help="customers/s rewritten to Redis from the table after a start, a rebalance or "
        "Redis coming back (env STREAMCRM_RESYNC_RATE, default 2000)",
    )


def add_rules_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--rules",
        metavar="FILE",
        default=_env("STREAMCRM_RULES", None),
        help="business rules file (TOML; every key and its default: rules.toml at the "
        "repository top); the decision flags below override it (env STREAMCRM_RULES)",
    )


def _add_decision_flags(p: argparse.ArgumentParser) -> None:
    add_rules_flag(p)
    p.add_argument(
        "--clock",
        choices=["wall", "event"],
        default=_env("STREAMCRM_CLOCK", "wall"),
        help="deadlines fire on the wall clock (live) or on event time (replays, simulated "
        "traffic) (env STREAMCRM_CLOCK, default wall)",
    )
    p.add_argument(
        "--abandon-after",
        default=_env("STREAMCRM_ABANDON_AFTER", None),
        help="cart inactivity before it counts as abandoned (env STREAMCRM_ABANDON_AFTER, default 30m)",
    )
    p.add_argument(
        "--stages",
        default=_env("STREAMCRM_STAGES", None),
        help="abandoned-cart stages name:after[:incentive], comma-separated "
        "(env STREAMCRM_STAGES, default reminder:1h,coupon:24h:incentive)",
    )
    p.add_argument(
        "--holdout",
        type=float,
        default=_env("STREAMCRM_HOLDOUT", None),  # a string: argparse applies type
        help="share of customers in the control group, never messaged (env STREAMCRM_HOLDOUT, default 0.10)",
    )
    p.add_argument(
        "--consent-default",
        choices=["yes", "no"],
        default=_env("STREAMCRM_CONSENT_DEFAULT", None),
        help="marketing consent of customers who never sent consent_updated "
        "(env STREAMCRM_CONSENT_DEFAULT, default yes; use no where opt-in is required)",
    )
    p.add_argument(
        "--incentive-window",
        default=_env("STREAMCRM_INCENTIVE_WINDOW", None),
        help="at most one incentive per customer in this window, and one per cart "
        "(env STREAMCRM_INCENTIVE_WINDOW, default 30d)",
    )
    p.add_argument(
        "--churn-horizon",
        default=_env("STREAMCRM_CHURN_HORIZON", None),
        help="churn model: will the customer order again within this? (env STREAMCRM_CHURN_HORIZON, default 30d)",
    )
    p.add_argument(
        "--tracked-skus",
        type=int,
        default=_env("STREAMCRM_TRACKED_SKUS", None),
        help="most SKUs the offer learners track (the least popular are dropped; memory grows "
        f"with it) (env STREAMCRM_TRACKED_SKUS, default {MAX_SKUS})",
    )


def _add_generator_flags(p: argparse.ArgumentParser, *, events_default: int) -> None:
    p.add_argument(
        "--events",
        type=int,
        default=events_default,
        help=f"how many events (default {events_default}; generate: 0 = run until stopped)",
    )
    p.add_argument(
        "--seed", type=int, default=7, help="random seed: same seed, same traffic (default 7)"
    )
    _add_shop_flags(p, customers=500, skus=400)
    p.add_argument(
        "--bad",
        type=int,
        default=0,
        help="how many of the events are malformed in assorted ways (default 0)",
    )


def _add_shop_flags(p: argparse.ArgumentParser, *, customers: int, skus: int) -> None:
    p.add_argument(
        "--customers", type=int, default=customers, help=f"distinct customers (default {customers})"
    )
    p.add_argument(
        "--skus",
        type=int,
        default=skus,
        help=f"catalogue size; long-tailed popularity over up to 400 categories (default {skus})",
    )
