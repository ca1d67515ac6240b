"""``streamcrm demo``: broker (embedded unless given), a worker process and the generator.

Prints progress to stderr while it runs and, as the last stdout line, one JSON object
summarising what the worker did (figures read from the worker's own ``/stats``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from streamcrm.config import Settings
from streamcrm.publish import publish_campaigns, publish_synthetic
from streamcrm.synthetic_flash import announcements
from streamcrm.tansu import broker, free_port
from streamcrm.worker_process import WorkerProcess


def run_demo(args: argparse.Namespace, settings: Settings, *, explicit_broker: bool) -> int:
    workdir = Path(args.keep_dir or tempfile.mkdtemp(prefix="streamcrm-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:8]
    settings = replace(settings, app_id=f"streamcrm-demo-{run_id}", web_port=free_port())
    if explicit_broker:
        # A shared broker holds earlier runs' events: give this run its own topics.
        t = settings.topics
        settings = replace(
            settings,
            topics=t.prefixed(f"demo-{run_id}."),
        )
    settings = replace(settings, redis_url=usable_redis(settings.redis_url))
    try:
        if not explicit_broker:
            _say("starting the embedded Tansu broker")
        with broker(
            settings.broker if explicit_broker else None, workdir / "broker.log"
        ) as address:
            settings = replace(settings, broker=address)
            return _run(args, settings, workdir)
    finally:
        if not args.keep_dir:
            shutil.rmtree(workdir, ignore_errors=True)


def usable_redis(url: str | None) -> str | None:
    if url is None:
        _say("Redis snapshot disabled (--no-redis)")
        return None
    from streamcrm.redaction import redis_address, scrub, url_password
    from streamcrm.serving import SnapshotWriter

    async def ping() -> None:
        writer = SnapshotWriter(url, timeout_s=1.0)
        try:
            await writer.ping()
        finally:
            await writer.close()

    try:
        asyncio.run(ping())
    except Exception as exc:  # noqa: BLE001 - any failure: run without it, and say so
        where = redis_address(url)
        reason = scrub(str(exc), [url_password(url)])
        _say(f"Redis at {where} is not reachable ({reason}); running without the snapshot")
        return None
    _say(f"writing customer snapshots to {redis_address(url)}")
    return url


def _run(args: argparse.Namespace, settings: Settings, workdir: Path) -> int:
    worker = WorkerProcess(settings, workdir)
    try:
        worker.wait_ready()
        base = worker.stats_url.removesuffix("/stats")
        _say(f"live dashboard: {base}/dashboard   metrics: {base}/metrics")
        _say(f"publishing {args.events} events (seed {args.seed}, bad {args.bad})")
        started = time.monotonic()
        sales = announcements(
            args.events, seed=args.seed, customers=args.customers, skus=args.skus, bad=args.bad,
            farmer_share=args.farmer_share,
        )  # fmt: skip
        _say(f"announcing {asyncio.run(publish_campaigns(settings, sales))} flash sales")
        sent = asyncio.run(
            publish_synthetic(
                settings, args.events, seed=args.seed, customers=args.customers, skus=args.skus,
                bad=args.bad, rate=args.rate, end_of_stream=settings.clock == "event",
                farmer_share=args.farmer_share, demand_shifts=getattr(args, "demand_shifts", 0),
            )
        )  # fmt: skip

        def progress(stats: dict[str, Any]) -> None:
            done = stats.get("events_in", 0)
            rate = done / max(time.monotonic() - started, 1e-9)
            _say(
                f"  {done}/{sent} events processed ({rate:.0f}/s), {stats.get('dead_letters', 0)} "
                f"dead letters, {stats.get('customers', 0)} customers"
            )

        # On the event clock the worker holds events until every input has passed their
        # time; the end-of-stream markers release the rest.
        stats = worker.wait_until(
            lambda s: s.get("events_in", 0) >= sent and s.get("buffered", 0) == 0,
            timeout_s=args.timeout, what=f"{sent} events processed", progress=progress,
        )  # fmt: skip
        elapsed = time.monotonic() - started
        stats = worker.stats(fresh=True) or stats  # population counts as of the end
        summary = _summary(stats, sent, elapsed)
        if args.farmer_share > 0:
            summary |= _flag_rates(settings, args.customers)
        _report(summary, elapsed)
        if args.hold:
            _say(f"holding: the dashboard stays up at {base}/dashboard until Ctrl-C")
            _hold(worker)
    finally:
        worker.stop()
    print(json.dumps(summary), flush=True)
    return 0 if summary["events_in"] == sent else 1


def _report(summary: dict[str, Any], elapsed: float) -> None:
    _say(
        f"done: {summary['events_in']} events in {elapsed:.1f} s ({summary['events_per_s']:.0f}/s), "
        f"{summary['applied']} applied, {summary['dead_letters']} dead-lettered, "
        f"{summary['customers']} customers; carts {summary.get('carts', 0)}, abandoned "
        f"{summary.get('carts_abandoned', 0)}, coupons/reminders sent {summary['coupons_issued']}, "
        f"holdout {summary.get('holdout', 0)}, recovered {summary.get('recovered', 0)}"
    )


def _hold(worker: WorkerProcess) -> None:
    try:
        while worker.proc.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        _say("stopping")


def _summary(stats: dict[str, Any], sent: int, elapsed: float) -> dict[str, Any]:
    events_in = int(stats.get("events_in", 0))
    snapshot = stats.get("snapshot")
    carts = stats.get("abandoned_cart", {})
    return {
        "events_sent": sent,
        "events_in": events_in,
        "rules_version": stats.get("rules_version"),
        "applied": stats.get("applied", 0),
        "duplicates": stats.get("duplicates", 0),
        "dead_letters": stats.get("dead_letters", 0),
        "dead_letters_by_reason": stats.get("dead_letters_by_reason", {}),
        "customers": stats.get("customers", 0),
        "snapshot_writes": snapshot["writes"] if snapshot else 0,
        "coupons_issued": stats.get("coupons_issued", 0),
        **{k: v for k, v in carts.items() if k != "suppressed_by_reason"},
        "lift": stats.get("lift"),
        "offers_emitted": stats.get("offers_emitted", 0),
        "offer_hit_rate_at_5": stats.get("offer_hit_rate_at_5"),
        "popularity_hit_rate_at_5": stats.get("popularity_hit_rate_at_5"),
        "offer_hit_rate_at_10": stats.get("offer_hit_rate_at_10"),
        "popularity_hit_rate_at_10": stats.get("popularity_hit_rate_at_10"),
        "profile_events": stats.get("profile_events", 0),
        "lifecycle": stats.get("lifecycle", {}),
        "segments": stats.get("segments", {}),
        "churn_auc": stats.get("churn_auc"),
        "sla_breaches": stats.get("service", {}).get("sla_breaches", 0),
        "anomaly_flags": stats.get("service", {}).get("anomaly_flags", 0),
        "flash_sale_notifications": stats.get("flash_sales", {}).get("notifications", 0),
        "flash_sales": stats.get("flash_sales", {}),
        "price_suggestions": (stats.get("pricing") or {}).get("price_suggestions", 0),
        "elapsed_s": round(elapsed, 3),
        "events_per_s": round(events_in / elapsed, 1) if elapsed > 0 else 0.0,
    }


def _flag_rates(settings: Settings, customers: int) -> dict[str, Any]:
    """Who the flags named (read back from the service topic): farmers ("f..." ids in the
    synthetic shop) and ordinary customers, as a share of the ``customers`` drawn from."""
    import orjson

    from streamcrm.verify.readback import read_topics

    topic = settings.topics.service_out
    read = read_topics(settings.broker, [topic], settings.kafka_security)[topic]
    named = {
        body["customer_id"]
        for body in (orjson.loads(r.value) for r in read if r.value is not None)
        if body.get("type") == "anomaly_flagged"
    }
    farmers = {c for c in named if c.startswith("f")}
    return {
        "farmers_flagged": len(farmers),
        "normal_customers_flagged": len(named) - len(farmers),
        "false_flag_rate": round((len(named) - len(farmers)) / customers, 5),
    }


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
