"""``streamcrm``: the parser and the commands. Reads flags and environment once and builds
Settings (cli_settings.py; the business rules: cli_rules.py).

Every flag falls back to the environment variable named in its help. Errors print one
line saying what was wrong and how to fix it, and exit non-zero: no tracebacks.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from streamcrm.cli_flags import (
    UsageError,
    _add_broker_flags,
    _add_decision_flags,
    _add_generator_flags,
    _add_redis_flags,
    _add_shop_flags,
    _add_worker_flags,
    _env,
    _int_env,
    add_rules_flag,
)
from streamcrm.cli_settings import settings_from
from streamcrm.config import Settings
from streamcrm.logs import setup as setup_logs
from streamcrm.redaction import install_log_scrubber, scrub, secrets_of

__all__ = ["build_parser", "main", "settings_from"]


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

    _add_replay_parser(sub)
    _add_bench_parser(sub)

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
    demo.add_argument(
        "--farmer-share",
        type=float,
        default=0.0,
        help="add this share of --customers as coupon farmers, and report the flags' "
        "false-flag rate on the ordinary customers (default 0: none)",
    )
    demo.add_argument(
        "--demand-shifts", type=int, default=3,
        help="SKUs whose views burst (40 extra an hour, for 1 h, 12 h into the traffic) so that "
        "price suggestions have something to find (synthetic_demand.py; default 3, 0: none)",
    )  # fmt: skip
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
    from streamcrm.forget import add_forget_parser

    add_forget_parser(sub)
    from streamcrm.experiments.uplift_command import add_uplift_parser

    add_uplift_parser(sub)
    from streamcrm.experiments.planted_check import add_planted_parser

    add_planted_parser(sub)
    from streamcrm.ope.command import add_evaluate_policy_parser

    add_evaluate_policy_parser(sub)
    return parser


def _add_replay_parser(sub: Any) -> None:
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
        "--decisions-out",
        metavar="FILE",
        help="write every emitted offer (with its exposure), offer reward, coupon and profile event to FILE as JSON lines",
    )
    rep.add_argument(
        "--via-kafka",
        action="store_true",
        help="push the events through a broker and a real worker instead of in memory",
    )
    from streamcrm.replay.flags import add_worker_flags  # light: argparse only

    add_worker_flags(rep)
    _add_broker_flags(rep, embedded_default=True)
    _add_decision_flags(rep)
    rep.set_defaults(clock="event", redis_url=None, no_redis=True)


def _add_bench_parser(sub: Any) -> None:
    bench = sub.add_parser(
        "bench", help="throughput and latency: raw consumer vs naive Faust vs pipeline"
    )
    _add_broker_flags(bench, embedded_default=True)
    _add_redis_flags(bench)
    add_rules_flag(bench)
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
    bench.add_argument(
        "--no-price-suggestions", action="store_true",
        help="run the pipeline worker without price suggestions (the naive agent has none)",
    )  # fmt: skip
    bench.add_argument(
        "--latency-rate", type=float, default=1_000.0, metavar="EVENTS_PER_S",
        help="offered load of the latency run, events/s (default 1000)",
    )
    bench.add_argument(
        "--workload", nargs=2, metavar=("FORMAT", "FILE"),
        help="benchmark on a real log (formats as replay's) instead of the synthetic shop",
    )  # fmt: skip
    bench.set_defaults(partitions=_int_env("STREAMCRM_PARTITIONS", 4))


def _check_generator_args(args: argparse.Namespace) -> None:
    if args.events < 0 or args.bad < 0 or args.customers < 1 or args.rate < 0 or args.skus < 1:
        msg = "--events, --bad and --rate must be >= 0 and --customers and --skus >= 1"
        raise UsageError(msg)
    if args.events and args.bad > args.events:
        msg = f"--bad {args.bad} is more than --events {args.events}"
        raise UsageError(msg)
    if not 0.0 <= getattr(args, "farmer_share", 0.0) <= 1.0:
        msg = f"--farmer-share must be a share between 0 and 1 (got {args.farmer_share:g})"
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
    if not 1.0 <= args.latency_rate <= 1_000_000.0:
        msg = f"--latency-rate must be 1-1000000 events/s (got {args.latency_rate:g})"
        raise UsageError(msg)
    workload = None
    if args.workload:
        from pathlib import Path

        from streamcrm.bench.workload import WorkloadError, from_log

        try:
            workload = from_log(args.workload[0], Path(args.workload[1]))
        except WorkloadError as exc:
            raise UsageError(str(exc)) from None
    settings = replace(
        settings,
        redis_url=usable_redis(settings.redis_url),
        price_suggestions=not args.no_price_suggestions,
    )

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    figures = run_bench(settings, events=args.events, rounds=args.rounds, seed=args.seed,
                        explicit_broker=args.broker is not None, say=say,
                        customers=args.customers, skus=args.skus,
                        callgrind=args.callgrind, workload=workload,
                        latency_rate=args.latency_rate)  # fmt: skip
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


def _offline(args: argparse.Namespace) -> int:
    from streamcrm.experiments.planted_check import PlantedUsageError, run_planted_check
    from streamcrm.experiments.uplift_command import UpliftUsageError, run_uplift
    from streamcrm.ope.command import EvaluateUsageError, run_evaluate_policy

    run = {"uplift": run_uplift, "planted-check": run_planted_check}
    try:
        return run.get(args.command, run_evaluate_policy)(args)
    except (UpliftUsageError, EvaluateUsageError, PlantedUsageError) as exc:
        raise UsageError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:  # noqa: PLR0911 - one return per command
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logs(getattr(args, "log_format", "text"))
    secrets: list[str] = []
    try:
        if args.command in ("uplift", "evaluate-policy", "planted-check"):  # offline: no broker
            return _offline(args)
        settings = settings_from(args)
        secrets = secrets_of(settings)
        install_log_scrubber(secrets)
        if args.command == "worker":
            return run_worker(settings)
        if args.command == "bench":
            return _bench(args, settings)
        if args.command == "verify":
            return _verify(args, settings)
        if args.command == "forget":
            from streamcrm.forget import run_forget

            return run_forget(args, settings)
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
        print(f"streamcrm {args.command}: error: {scrub(str(exc), secrets)}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1


if __name__ == "__main__":
    sys.exit(main())
