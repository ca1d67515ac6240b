"""The ``streamcrm verify`` command line (argparse only: cheap to import)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from streamcrm.cli_flags import _add_kafka_security_flags
from streamcrm.config import Topics


def add_verify_parser(
    sub: Any, add_decision_flags: Callable[[argparse.ArgumentParser], None]
) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "verify",
        help="publish a known workload, kill and add workers, check nothing was lost or "
        "sent twice; JSON summary with --json",
    )
    p.add_argument(
        "--broker",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
        help="Kafka bootstrap servers host:port[,host:port] to check (env "
        "KAFKA_BOOTSTRAP_SERVERS; default: an embedded Tansu broker). verify creates its "
        "own topics and consumer group, prefixed verify-<run id>",
    )
    _add_kafka_security_flags(p)
    p.add_argument("--partitions", type=int, default=4, help="partitions per topic (default 4)")
    p.add_argument(
        "--redis-url",
        default=None,
        help="Redis to write snapshots to (default: verify starts its own redis-server). "
        "It writes keys streamcrm:customer:c0*: use a scratch database",
    )
    p.add_argument("--events", type=int, default=30_000, help="events to publish (default 30000)")
    p.add_argument("--customers", type=int, default=2000, help="distinct customers (default 2000)")
    p.add_argument("--seed", type=int, default=7, help="random seed of the workload (default 7)")
    p.add_argument(
        "--rate", type=float, default=250.0, help="events per second published (default 250)"
    )
    p.add_argument(
        "--kills", type=int, default=2, help="how many times a worker is SIGKILLed (default 2)"
    )
    p.add_argument(
        "--redis-outage", action="store_true", help="also take Redis away and bring it back empty"
    )
    p.add_argument(
        "--redis-down", type=float, default=10.0, help="seconds Redis stays away (default 10)"
    )
    p.add_argument(
        "--settle",
        type=float,
        default=30.0,
        help="seconds the workers get to write pending snapshots before they are stopped (default 30)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=180.0,
        help="give up if the workers have not caught up this many seconds after a fault (default 180)",
    )
    p.add_argument(
        "--json", action="store_true", help="print the figures as one JSON object, last line"
    )
    p.add_argument("--keep-dir", default=None, help="keep worker logs and data in this folder")
    add_decision_flags(p)
    d = Topics()
    p.set_defaults(
        clock="wall", no_redis=False,
        **{f"topic_{k}": getattr(d, k) for k in ("browse", "cart", "order", "service",
                                                 "deadletter", "coupons", "offers", "profiles",
                                                 "erasures", "service_out")},
    )  # fmt: skip


def check_verify_args(args: argparse.Namespace) -> str | None:
    """A message saying what is wrong with the arguments, or None."""
    if args.events < 10 or args.customers < 1 or args.rate <= 0:
        return "--events must be at least 10, --customers at least 1 and --rate above 0"
    if args.kills < 0 or args.partitions < 1:
        return "--kills must be >= 0 and --partitions >= 1"
    if args.redis_down < 0 or args.settle < 0 or args.timeout <= 0:
        return "--redis-down and --settle must be >= 0 and --timeout above 0"
    if args.redis_outage and args.redis_url:
        return (
            "--redis-outage stops and restarts Redis: it needs verify's own (leave out --redis-url)"
        )
    return None
