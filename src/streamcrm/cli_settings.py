"""Flags and environment -> :class:`~streamcrm.config.Settings`, checked: every problem is
one :class:`~streamcrm.cli_flags.UsageError` line. The rules part is :mod:`streamcrm.cli_rules`."""

from __future__ import annotations

import argparse
import os
from dataclasses import fields, replace

from streamcrm.cli_flags import UsageError
from streamcrm.cli_rules import crm_config
from streamcrm.config import Drills, Settings, Topics, parse_duration
from streamcrm.kafka_security import ENV_PASSWORD, KafkaSecurity, read_password_file, ssl_context
from streamcrm.web_access import TOKEN_ENV


def _duration(text: str, flag: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        msg = f"{flag}: {exc}"
        raise UsageError(msg) from None


def _positive(seconds: float, flag: str) -> float:
    if seconds <= 0:
        msg = f"{flag}: must be more than 0 (e.g. {flag} 5s)"
        raise UsageError(msg)
    return seconds


def settings_from(args: argparse.Namespace) -> Settings:
    if args.partitions < 1:
        msg = f"--partitions must be at least 1 (got {args.partitions})"
        raise UsageError(msg)
    defaults = Topics()  # a command without a topic's flag (verify: the audit's) keeps it
    topics = Topics(
        **{f.name: getattr(args, f"topic_{f.name}", getattr(defaults, f.name)) for f in fields(Topics)}
    )
    if len({topics.browse, topics.cart, topics.order}) != 3:
        msg = "the browse, cart and order topics must be three different topics"
        raise UsageError(msg)
    if topics.service in {topics.browse, topics.cart, topics.order}:
        msg = "the service topic must differ from the browse, cart and order topics"
        raise UsageError(msg)
    settings = Settings(
        broker=args.broker or "127.0.0.1:9092",
        partitions=args.partitions,
        topics=topics,
        kafka_security=_kafka_security(args),
        web_token=os.environ.get(TOKEN_ENV) or None,
    )
    if hasattr(args, "rules"):
        settings = replace(settings, crm=crm_config(args))
    if hasattr(args, "clock"):
        settings = replace(settings, clock=args.clock)
    if hasattr(args, "redis_url"):
        settings = replace(settings, redis_url=None if args.no_redis else args.redis_url)
    return _worker_settings(args, settings) if args.command == "worker" else settings


def _worker_settings(args: argparse.Namespace, settings: Settings) -> Settings:
    """What only ``worker`` has flags for."""
    if args.batch_size < 1:
        msg = f"--batch-size must be at least 1 (got {args.batch_size})"
        raise UsageError(msg)
    if args.max_record_bytes < 1024:
        msg = f"--max-record-bytes must be at least 1024 (got {args.max_record_bytes})"
        raise UsageError(msg)
    settings = replace(
        settings,
        app_id=args.app_id,
        web_host=args.web_host,
        web_port=args.web_port,
        data_dir=args.data_dir,
        batch_size=args.batch_size,
        fast_rebalance=args.fast_rebalance,
        checkpoint_every_s=_duration(args.checkpoint_every, "--checkpoint-every"),
        share_learning=args.share_learning,
        price_suggestions=not args.no_price_suggestions,
        share_every_s=_positive(_duration(args.share_every, "--share-every"), "--share-every"),
        log_level=args.log_level,
        log_format=args.log_format,
        audit=args.audit,
        max_record_bytes=args.max_record_bytes,
        max_future_skew_s=_duration(args.max_future_skew, "--max-future-skew"),
        resync_rate=args.resync_rate,
        drills=_drills(),
        group_instance_id=args.group_instance_id or None,
        deadletter_retention_s=_duration(args.deadletter_retention, "--deadletter-retention")
        if args.deadletter_retention
        else None,
        session_timeout_s=_session_timeout(args.session_timeout, args.fast_rebalance),
        erasure_hold_s=_duration(args.erasure_hold, "--erasure-hold"),
    )
    if not args.resync_rate > 0:
        msg = f"--resync-rate must be above 0 customers/s (got {args.resync_rate:g})"
        raise UsageError(msg)
    return settings


def _kafka_security(args: argparse.Namespace) -> KafkaSecurity:
    try:
        password = os.environ.get(ENV_PASSWORD) or None
        if password is None and args.sasl_password_file:
            password = read_password_file(args.sasl_password_file)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    security = KafkaSecurity(
        protocol=args.security_protocol,
        sasl_mechanism=args.sasl_mechanism,
        username=args.sasl_username or None,
        password=password,
        ca_file=args.ssl_ca_file or None,
        cert_file=args.ssl_cert_file or None,
        key_file=args.ssl_key_file or None,
    )
    problem = security.problem()
    for flag, path in (("--ssl-ca-file", security.ca_file), ("--ssl-cert-file", security.cert_file),
                       ("--ssl-key-file", security.key_file)):  # fmt: skip
        if path and not os.path.isfile(path):
            problem = problem or f"{flag} {path}: no such file"
    if problem:
        raise UsageError(problem)
    if security.tls:
        try:
            ssl_context(security)  # a bad certificate or key fails here, not mid-run
        except (OSError, ValueError) as exc:
            msg = f"cannot load the TLS files ({exc}): check --ssl-ca-file, --ssl-cert-file and --ssl-key-file"
            raise UsageError(msg) from None
    return security


def _session_timeout(text: str | None, fast_rebalance: bool) -> float | None:
    if not text:
        return None
    value = _duration(text, "--session-timeout")
    floor = 3.0 if fast_rebalance else 9.0  # three heartbeats (config.Settings)
    if not floor <= value <= 90.0:
        msg = (
            f"--session-timeout {text} must be between {floor:g}s (three heartbeats"
            f"{' with --fast-rebalance' if fast_rebalance else ''}) and 90s (the request timeout)"
        )
        raise UsageError(msg)
    return value


def _drills() -> Drills:
    """Fault injection for drills (config.Drills): environment only, no flags."""
    marker = os.environ.get("STREAMCRM_DRILL_CRASH_MARKER") or None
    delay = os.environ.get("STREAMCRM_DRILL_SEND_DELAY_S") or "0"
    try:
        send_delay_s = float(delay)
    except ValueError:
        msg = f"STREAMCRM_DRILL_SEND_DELAY_S={delay!r} is not a number of seconds"
        raise UsageError(msg) from None
    return Drills(crash_marker=marker.encode() if marker else None, send_delay_s=send_delay_s)
