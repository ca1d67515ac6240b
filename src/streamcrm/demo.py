"""``streamcrm demo``: broker (embedded unless given), a worker process and the generator.

Prints progress to stderr while it runs and, as the last stdout line, one JSON object
summarising what the worker did (figures read from the worker's own ``/stats``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from streamcrm.config import Settings, Topics
from streamcrm.publish import publish_synthetic
from streamcrm.tansu import embedded_broker, free_port


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
            topics=Topics(
                *(
                    f"demo-{run_id}.{n}"
                    for n in (
                        t.browse,
                        t.cart,
                        t.order,
                        t.deadletter,
                        t.coupons,
                        t.offers,
                        t.profiles,
                    )
                )
            ),
        )
    settings = replace(settings, redis_url=_usable_redis(settings.redis_url))
    try:
        with _broker(settings, explicit_broker, workdir) as broker:
            settings = replace(settings, broker=broker)
            return _run(args, settings, workdir)
    finally:
        if not args.keep_dir:
            shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def _broker(settings: Settings, explicit: bool, workdir: Path) -> Iterator[str]:
    if explicit:
        yield settings.broker
        return
    _say("starting the embedded Tansu broker")
    with embedded_broker(workdir / "broker.log") as address:
        yield address


def _usable_redis(url: str | None) -> str | None:
    if url is None:
        _say("Redis snapshot disabled (--no-redis)")
        return None
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
        _say(f"Redis at {url} is not reachable ({exc}); running without the snapshot")
        return None
    _say(f"writing customer snapshots to {url}")
    return url


def _run(args: argparse.Namespace, settings: Settings, workdir: Path) -> int:
    worker = _start_worker(args, settings, workdir)
    stats_url = f"http://127.0.0.1:{settings.web_port}/stats"
    try:
        _wait_for_stats(stats_url, worker, workdir)
        _say(
            f"worker up: {stats_url}; publishing {args.events} events (seed {args.seed}, bad {args.bad})"
        )
        started = time.monotonic()
        sent = asyncio.run(
            publish_synthetic(
                settings,
                args.events,
                seed=args.seed,
                customers=args.customers,
                bad=args.bad,
                rate=args.rate,
            )
        )
        stats = _wait_until_processed(stats_url, worker, sent, started, args.timeout, workdir)
        elapsed = time.monotonic() - started
    finally:
        _stop(worker)
    summary = _summary(stats, sent, elapsed)
    _say(
        f"done: {summary['events_in']} events in {elapsed:.1f} s ({summary['events_per_s']:.0f}/s), "
        f"{summary['applied']} applied, {summary['dead_letters']} dead-lettered, "
        f"{summary['customers']} customers; carts {summary.get('carts', 0)}, abandoned "
        f"{summary.get('carts_abandoned', 0)}, coupons/reminders sent {summary['coupons_issued']}, "
        f"holdout {summary.get('holdout', 0)}, recovered {summary.get('recovered', 0)}"
    )
    print(json.dumps(summary), flush=True)
    return 0 if summary["events_in"] == sent else 1


def _start_worker(
    args: argparse.Namespace, settings: Settings, workdir: Path
) -> subprocess.Popen[bytes]:
    t = settings.topics
    cmd = [
        sys.executable,
        "-m",
        "streamcrm",
        "worker",
        "--broker",
        settings.broker,
        "--partitions",
        str(settings.partitions),
        "--app-id",
        settings.app_id,
        "--web-port",
        str(settings.web_port),
        "--data-dir",
        str(workdir / "worker-data"),
        "--fast-rebalance",
        "--topic-browse",
        t.browse,
        "--topic-cart",
        t.cart,
        "--topic-order",
        t.order,
        "--topic-deadletter",
        t.deadletter,
    ]
    cmd += ["--topic-coupons", t.coupons, "--clock", settings.clock]
    cmd += ["--abandon-after", args.abandon_after, "--stages", args.stages]
    cmd += ["--holdout", str(args.holdout), "--consent-default", args.consent_default]
    cmd += ["--redis-url", settings.redis_url] if settings.redis_url else ["--no-redis"]
    log = open(workdir / "worker.log", "ab")  # noqa: SIM115 - the child holds it open
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def _get_stats(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own worker
            data: dict[str, Any] = json.loads(response.read())
            return data
    except OSError:
        return None


def _worker_failed(worker: subprocess.Popen[bytes], workdir: Path) -> RuntimeError:
    tail = (workdir / "worker.log").read_text(errors="replace").strip().splitlines()[-5:]
    return RuntimeError(f"the worker exited with code {worker.returncode}: " + " | ".join(tail))


def _wait_for_stats(url: str, worker: subprocess.Popen[bytes], workdir: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise _worker_failed(worker, workdir)
        if _get_stats(url) is not None:
            return
        time.sleep(0.2)
    msg = f"the worker did not start serving {url} within 60 s (log: {workdir / 'worker.log'})"
    raise TimeoutError(msg)


def _wait_until_processed(
    url: str,
    worker: subprocess.Popen[bytes],
    sent: int,
    started: float,
    timeout: float,
    workdir: Path,
) -> dict[str, Any]:
    last_print = 0.0
    while True:
        if worker.poll() is not None:
            raise _worker_failed(worker, workdir)
        stats = _get_stats(url) or {}
        done = stats.get("events_in", 0)
        now = time.monotonic()
        if done >= sent:
            return stats
        if now - last_print >= 1.0:
            rate = done / max(now - started, 1e-9)
            _say(
                f"  {done}/{sent} events processed ({rate:.0f}/s), "
                f"{stats.get('dead_letters', 0)} dead letters, {stats.get('customers', 0)} customers"
            )
            last_print = now
        if now - started > timeout:
            msg = f"only {done} of {sent} events processed after {timeout:.0f} s (raise --timeout?)"
            raise TimeoutError(msg)
        time.sleep(0.25)


def _stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _summary(stats: dict[str, Any], sent: int, elapsed: float) -> dict[str, Any]:
    events_in = int(stats.get("events_in", 0))
    snapshot = stats.get("snapshot")
    carts = stats.get("abandoned_cart", {})
    return {
        "events_sent": sent,
        "events_in": events_in,
        "applied": stats.get("applied", 0),
        "duplicates": stats.get("duplicates", 0),
        "dead_letters": stats.get("dead_letters", 0),
        "dead_letters_by_reason": stats.get("dead_letters_by_reason", {}),
        "customers": stats.get("customers", 0),
        "snapshot_writes": snapshot["writes"] if snapshot else 0,
        "coupons_issued": stats.get("coupons_issued", 0),
        **{k: v for k, v in carts.items() if k != "suppressed_by_reason"},
        # Capabilities still to land (next-best-offer): zero, not absent.
        "offers_emitted": 0,
        "elapsed_s": round(elapsed, 3),
        "events_per_s": round(events_in / elapsed, 1) if elapsed > 0 else 0.0,
    }


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
