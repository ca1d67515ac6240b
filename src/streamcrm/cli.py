"""``streamcrm``: worker, generate, demo. Reads flags and environment once, builds Settings.

Every flag falls back to the environment variable named in its help. Errors print one
line saying what was wrong and how to fix it, and exit non-zero: no tracebacks.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from streamcrm.config import Drills, Settings, Topics, parse_duration, parse_stages
from streamcrm.decisions import CrmConfig
from streamcrm.policies.abandoned_cart import AbandonConfig
from streamcrm.policies.contact import ContactPolicy


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
    defaults = Topics()
    for kind in ("browse", "cart", "order", "deadletter", "coupons", "offers", "profiles"):
        env = f"STREAMCRM_TOPIC_{kind.upper()}"
        p.add_argument(
            f"--topic-{kind}",
            default=_env(env, getattr(defaults, kind)),
            help=f"topic name (env {env}, default {getattr(defaults, kind)})",
        )


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
        "--checkpoint-every",
        default=_env("STREAMCRM_CHECKPOINT_EVERY", "30s"),
        help="how often learners are checkpointed to their changelog (env STREAMCRM_CHECKPOINT_EVERY, default 30s)",
    )
    worker.add_argument(
        "--resync-rate",
        type=float,
        default=_env("STREAMCRM_RESYNC_RATE", "2000"),  # a string: argparse applies type
        help="customers/s rewritten to Redis from the table after a start, a rebalance or "
        "Redis coming back (env STREAMCRM_RESYNC_RATE, default 2000)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamcrm", description="Real-time CRM event processor (Faust + Kafka + Redis)."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    worker = sub.add_parser("worker", help="run a Faust worker (scale out by starting more)")
    _add_worker_flags(worker)

    gen = sub.add_parser("generate", help="publish synthetic storefront traffic")
    _add_broker_flags(gen)
    _add_generator_flags(gen, events_default=10_000)
    gen.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="events per second; 0 = as fast as possible (default 0)",
    )

    rep = sub.add_parser(
        "replay", help="replay a behaviour log on event time through the decision code"
    )
    rep.add_argument(
        "file", help="the log file (CSV for rees46/taobao/retailrocket, JSON lines for jsonl)"
    )
    rep.add_argument(
        "--format",
        required=True,
        choices=["rees46", "taobao", "retailrocket", "jsonl"],
        help="the log's format",
    )
    rep.add_argument(
        "--json", action="store_true", help="print the summary as one JSON object, last line"
    )
    rep.add_argument(
        "--report", metavar="DIR", help="write an HTML report with plots to DIR/index.html"
    )
    rep.add_argument(
        "--via-kafka",
        action="store_true",
        help="push the events through a broker and a real worker instead of in memory",
    )
    _add_broker_flags(rep, embedded_default=True)
    _add_decision_flags(rep)
    rep.set_defaults(clock="event", redis_url=None, no_redis=True)

    bench = sub.add_parser(
        "bench", help="throughput and latency: raw consumer vs naive Faust vs pipeline"
    )
    _add_broker_flags(bench, embedded_default=True)
    _add_redis_flags(bench)
    bench.add_argument(
        "--events", type=int, default=60_000, help="events per contender run (default 60000)"
    )
    bench.add_argument(
        "--rounds", type=int, default=2, help="interleaved rounds; the best is reported (default 2)"
    )
    bench.add_argument(
        "--seed", type=int, default=7, help="random seed of the synthetic events (default 7)"
    )
    _add_shop_flags(bench, customers=100_000, skus=100_000)
    bench.add_argument(
        "--callgrind",
        action="store_true",
        help="also count the decision core's instructions per event under valgrind (minutes)",
    )
    bench.add_argument(
        "--json", action="store_true", help="print the figures as one JSON object, last line"
    )
    bench.set_defaults(partitions=_int_env("STREAMCRM_PARTITIONS", 4))

    demo = sub.add_parser(
        "demo", help="broker + worker + generator in one command; prints a JSON summary"
    )
    _add_broker_flags(demo, embedded_default=True)
    _add_redis_flags(demo)
    _add_generator_flags(demo, events_default=20_000)
    demo.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="events per second offered; 0 = as fast as possible (default 0)",
    )
    _add_decision_flags(demo)
    # Synthetic traffic runs on simulated time: deadlines follow event time.
    demo.set_defaults(clock=_env("STREAMCRM_CLOCK", "event"))
    demo.add_argument(
        "--hold",
        action="store_true",
        help="keep the worker and its dashboard up after the run, until Ctrl-C",
    )
    demo.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="give up if the worker has not processed everything after this many seconds",
    )
    demo.add_argument(
        "--keep-dir",
        default=None,
        help="keep worker logs and data in this folder (default: a temporary folder)",
    )
    from streamcrm.verify.options import add_verify_parser

    add_verify_parser(sub, _add_decision_flags)
    return parser


def _add_decision_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--clock",
        choices=["wall", "event"],
        default=_env("STREAMCRM_CLOCK", "wall"),
        help="deadlines fire on the wall clock (live) or on event time (replays, simulated "
        "traffic) (env STREAMCRM_CLOCK, default wall)",
    )
    p.add_argument(
        "--abandon-after",
        default=_env("STREAMCRM_ABANDON_AFTER", "30m"),
        help="cart inactivity before it counts as abandoned (env STREAMCRM_ABANDON_AFTER, default 30m)",
    )
    p.add_argument(
        "--stages",
        default=_env("STREAMCRM_STAGES", "reminder:1h,coupon:24h:incentive"),
        help="abandoned-cart stages name:after[:incentive], comma-separated "
        "(env STREAMCRM_STAGES, default reminder:1h,coupon:24h:incentive)",
    )
    p.add_argument(
        "--holdout",
        type=float,
        default=float(_env("STREAMCRM_HOLDOUT", "0.10")),
        help="share of customers in the control group, never messaged (env STREAMCRM_HOLDOUT, default 0.10)",
    )
    p.add_argument(
        "--consent-default",
        choices=["yes", "no"],
        default=_env("STREAMCRM_CONSENT_DEFAULT", "yes"),
        help="marketing consent of customers who never sent consent_updated "
        "(env STREAMCRM_CONSENT_DEFAULT, default yes; use no where opt-in is required)",
    )
    p.add_argument(
        "--churn-horizon",
        default=_env("STREAMCRM_CHURN_HORIZON", "30d"),
        help="churn model: will the customer order again within this? (env STREAMCRM_CHURN_HORIZON, default 30d)",
    )


def _duration(text: str, flag: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        msg = f"{flag}: {exc}"
        raise UsageError(msg) from None


def _crm_config(args: argparse.Namespace) -> CrmConfig:
    try:
        horizon = parse_duration(args.churn_horizon)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return CrmConfig(abandon=_abandon_config(args), churn_horizon_s=horizon)


def _abandon_config(args: argparse.Namespace) -> AbandonConfig:
    if not 0.0 <= args.holdout <= 1.0:
        msg = f"--holdout must be between 0 and 1 (got {args.holdout})"
        raise UsageError(msg)
    try:
        return AbandonConfig(
            abandon_after=parse_duration(args.abandon_after),
            stages=parse_stages(args.stages),
            consent_default=args.consent_default == "yes",
            contact=ContactPolicy(holdout_share=args.holdout),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


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


def settings_from(args: argparse.Namespace) -> Settings:
    if args.partitions < 1:
        msg = f"--partitions must be at least 1 (got {args.partitions})"
        raise UsageError(msg)
    topics = Topics(
        browse=args.topic_browse,
        cart=args.topic_cart,
        order=args.topic_order,
        deadletter=args.topic_deadletter,
        coupons=args.topic_coupons,
        offers=args.topic_offers,
        profiles=args.topic_profiles,
    )
    if len(set(topics.inputs())) != 3:
        msg = "the browse, cart and order topics must be three different topics"
        raise UsageError(msg)
    settings = Settings(
        broker=args.broker or "127.0.0.1:9092", partitions=args.partitions, topics=topics
    )
    if hasattr(args, "clock"):
        settings = replace(settings, clock=args.clock, crm=_crm_config(args))
    if hasattr(args, "redis_url"):
        settings = replace(settings, redis_url=None if args.no_redis else args.redis_url)
    if args.command == "worker":
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
            log_level=args.log_level,
            max_record_bytes=args.max_record_bytes,
            max_future_skew_s=_duration(args.max_future_skew, "--max-future-skew"),
            resync_rate=args.resync_rate,
            drills=_drills(),
            group_instance_id=args.group_instance_id or None,
            session_timeout_s=_session_timeout(args.session_timeout, args.fast_rebalance),
        )
        if not args.resync_rate > 0:
            msg = f"--resync-rate must be above 0 customers/s (got {args.resync_rate:g})"
            raise UsageError(msg)
    return settings


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


def _check_generator_args(args: argparse.Namespace) -> None:
    if args.events < 0 or args.bad < 0 or args.customers < 1 or args.rate < 0 or args.skus < 1:
        msg = "--events, --bad and --rate must be >= 0 and --customers and --skus >= 1"
        raise UsageError(msg)
    if args.events and args.bad > args.events:
        msg = f"--bad {args.bad} is more than --events {args.events}"
        raise UsageError(msg)


def run_worker(settings: Settings) -> int:
    from streamcrm.app.runner import run_worker as run

    return run(settings)


def _bench(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from streamcrm.bench.run import run_bench
    from streamcrm.demo import usable_redis

    if args.events < 1000 or args.rounds < 1 or args.customers < 1 or args.skus < 1:
        msg = "--events must be at least 1000, --rounds, --customers and --skus at least 1"
        raise UsageError(msg)
    settings = replace(settings, redis_url=usable_redis(settings.redis_url))

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    figures = run_bench(settings, events=args.events, rounds=args.rounds, seed=args.seed,
                        explicit_broker=args.broker is not None, say=say,
                        customers=args.customers, skus=args.skus,
                        callgrind=args.callgrind)  # fmt: skip
    for key, value in figures.items():
        say(f"{key:>30}: {value}")
    if args.json:
        print(json.dumps(figures), flush=True)
    return 0


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    from streamcrm.verify.command import run_verify
    from streamcrm.verify.options import check_verify_args

    problem = check_verify_args(args)
    if problem:
        raise UsageError(problem)
    return run_verify(args, settings)


def main(argv: Sequence[str] | None = None) -> int:  # noqa: PLR0911 - one return per command
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = settings_from(args)
        if args.command == "worker":
            return run_worker(settings)
        if args.command == "bench":
            return _bench(args, settings)
        if args.command == "verify":
            return _verify(args, settings)
        if args.command == "replay":
            from streamcrm.replay.command import run_replay

            return run_replay(args, settings)
        _check_generator_args(args)
        if args.command == "generate":
            from streamcrm.publish import publish_synthetic

            sent = asyncio.run(
                publish_synthetic(
                    settings,
                    args.events,
                    seed=args.seed,
                    customers=args.customers,
                    skus=args.skus,
                    bad=args.bad,
                    rate=args.rate,
                )
            )
            print(f"published {sent} events to {settings.broker}", file=sys.stderr)
            return 0
        from streamcrm.demo import run_demo

        return run_demo(args, settings, explicit_broker=args.broker is not None)
    except KeyboardInterrupt:
        print("streamcrm: interrupted", file=sys.stderr)
        return 130
    except (UsageError, RuntimeError, OSError, TimeoutError) as exc:
        print(f"streamcrm {args.command}: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1


if __name__ == "__main__":
    sys.exit(main())
