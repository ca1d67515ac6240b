"""``streamcrm verify``: publish a known workload, break workers, check nothing went wrong.

Runs against ``--broker`` (the SRE's own cluster: its topics and consumer group are new,
prefixed ``verify-<run id>``) or an embedded Tansu broker it starts, and its own
``redis-server`` unless ``--redis-url`` is given. Workers run on the wall clock. The
figures are defined in :mod:`streamcrm.verify.figures`, the faults in
:mod:`streamcrm.verify.plan`, recovery in :mod:`streamcrm.verify.cluster`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from streamcrm.config import Settings, Topics, bootstrap_servers
from streamcrm.kafka_security import client_kwargs, start_client
from streamcrm.publish import END_OF_STREAM_HEADER, publish
from streamcrm.state import Limits
from streamcrm.tansu import broker
from streamcrm.verify import figures
from streamcrm.verify.cluster import RedisServer, Workers, wait_caught_up
from streamcrm.verify.plan import Fault, fault_plan
from streamcrm.verify.readback import read_snapshots, read_topics
from streamcrm.verify.reference import reference_run
from streamcrm.verify.workload import Workload, build_workload

CHANGELOG = "{app_id}-customers-v1-changelog"  # app/factory.py CUSTOMERS_TABLE


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Publisher(threading.Thread):
    """Publishes the workload in the background, plus a tick on every input partition each
    second until stopped; tracks the end offsets the broker acknowledged.

    A tick is an empty end-of-stream control record (header ``streamcrm-end-of-stream``,
    the largest event time published so far): no event, ignored by the decision core on
    the wall clock, but it moves every partition's offset, so a worker that takes over a
    partition shows it has caught up by processing the ticks after the fault.
    """

    def __init__(self, settings: Settings, workload: Workload, rate: float) -> None:
        super().__init__(daemon=True)
        self.settings, self.workload, self.rate = settings, workload, rate
        self.lock = threading.Lock()
        self.acked = 0
        self.ends: dict[tuple[str, int], int] = {}
        self.error: BaseException | None = None
        self.published = threading.Event()
        self.stopping = threading.Event()

    def _acked(self, topic: str, partition: int, offset: int) -> None:
        with self.lock:
            self.acked += 1
            self._end(topic, partition, offset)

    def _end(self, topic: str, partition: int, offset: int) -> None:
        self.ends[(topic, partition)] = max(self.ends.get((topic, partition), 0), offset + 1)

    def snapshot(self) -> tuple[int, dict[tuple[str, int], int]]:
        with self.lock:
            return self.acked, dict(self.ends)

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc
            self.published.set()

    async def _main(self) -> None:
        ticker = asyncio.create_task(self._tick())
        try:
            await publish(self.settings, self.workload.records(), rate=self.rate, acked=self._acked)
        finally:
            self.published.set()
        await ticker

    async def _tick(self) -> None:
        servers, security = bootstrap_servers(self.settings.broker), self.settings.kafka_security
        producer = AIOKafkaProducer(bootstrap_servers=servers, **client_kwargs(security))
        await start_client(producer, servers, security)
        try:
            while not self.stopping.is_set():
                with self.lock:
                    done = self.acked
                last = max((e.ts for e in self.workload.events[:done]), default=0.0)
                header = [(END_OF_STREAM_HEADER, repr(last).encode())]
                for topic in self.settings.topics.inputs():
                    for partition in sorted(await producer.partitions_for(topic)):
                        meta = await (
                            await producer.send(topic, b"", partition=partition, headers=header)
                        )
                        with self.lock:
                            self._end(topic, partition, meta.offset)
                await asyncio.sleep(1.0)
        finally:
            await producer.stop()


def verify_settings(settings: Settings, partitions: int) -> Settings:
    run_id = uuid.uuid4().hex[:8]
    return replace(
        settings, app_id=f"streamcrm-verify-{run_id}", partitions=partitions, clock="wall",
        topics=Topics().prefixed(f"verify-{run_id}."), fast_rebalance=True,
    )  # fmt: skip


@contextlib.contextmanager
def _redis(url: str | None, workdir: Path) -> Iterator[RedisServer | None]:
    if url:
        yield None
        return
    server = RedisServer(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def run_verify(args: argparse.Namespace, settings: Settings) -> int:
    started = time.monotonic()
    settings = verify_settings(settings, args.partitions)
    workdir = Path(args.keep_dir or tempfile.mkdtemp(prefix="streamcrm-verify-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if not args.broker:
            _say("starting the embedded Tansu broker")
        with (
            broker(args.broker, workdir / "broker.log") as address,
            _redis(args.redis_url, workdir) as own_redis,
        ):
            url = args.redis_url or (own_redis.url if own_redis else None)
            settings = replace(settings, broker=address, redis_url=url)
            result = _run(args, settings, workdir, own_redis)
    finally:
        if not args.keep_dir:
            shutil.rmtree(workdir, ignore_errors=True)
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    _say(f"verify finished in {result['elapsed_s']} s")
    for key in ("events_lost", "events_applied_twice", "duplicate_coupons", "wrong_coupons",
                "snapshots_stale", "duplicate_output_ids"):  # fmt: skip
        _say(f"  {key}: {result[key]}")
    if args.json:
        print(json.dumps(result), flush=True)
    bad = ("events_lost", "events_applied_twice", "duplicate_coupons", "wrong_coupons",
           "snapshots_stale")  # fmt: skip
    return 1 if any(result[k] for k in bad) else 0


def _run(
    args: argparse.Namespace, settings: Settings, workdir: Path, own_redis: RedisServer | None
) -> dict[str, Any]:
    crm = settings.crm
    settle_s = max([s.after for s in crm.abandon.stages] + [crm.abandon.abandon_after]) + 3600
    workload = build_workload(
        args.events, seed=args.seed, customers=args.customers, now=time.time(), settle_s=settle_s
    )
    _say(f"workload: {len(workload.events)} events, {args.customers} customers, seed {args.seed}, "
         f"stamped in the past so every deadline is due; {args.partitions} partitions")  # fmt: skip
    workers = Workers(settings, workdir)
    recoveries: list[dict[str, Any]] = []
    publisher = Publisher(settings, workload, args.rate)
    try:
        workers.start("w1")
        publisher.start()
        for fault in fault_plan(kills=args.kills, redis_outage=args.redis_outage):
            _wait_share(publisher, fault.at, len(workload.events), workers)
            recoveries.append(_inject(fault, workers, publisher, own_redis, args))
        publisher.published.wait()
        if publisher.error is not None:
            raise RuntimeError(f"publishing failed: {publisher.error}")
        acked, ends = publisher.snapshot()
        _say(f"published {acked} events; waiting for the workers to process all of them")
        wait_caught_up(workers, ends, timeout_s=args.timeout, what="final drain", say=_say)
        publisher.stopping.set()
        publisher.join()
        pending = _wait_snapshots(workers, args.settle)
        _say("stopping the workers (SIGTERM)")
        workers.stop_all()
    finally:
        publisher.stopping.set()
        workers.stop_all()
    result = _figures(settings, workload, acked, recoveries, pending, settings.redis_url)
    result["worker_crashes"] = workers.crashes
    return result


def _wait_share(publisher: Publisher, share: float, total: int, workers: Workers) -> None:
    last = 0.0
    while not publisher.published.is_set() and publisher.snapshot()[0] < share * total:
        if time.monotonic() - last >= 5:
            stats = workers.stats()
            applied = sum(s.get("applied", 0) for s in stats)
            _say(f"  published {publisher.snapshot()[0]}/{total}; live workers {sorted(workers.live)}"
                 f" applied {applied} since they started")  # fmt: skip
            last = time.monotonic()
        time.sleep(0.2)


def _inject(
    fault: Fault,
    workers: Workers,
    publisher: Publisher,
    own_redis: RedisServer | None,
    args: argparse.Namespace,
) -> dict[str, Any]:
    acked, ends = publisher.snapshot()
    _say(f"fault at {acked} events published: {fault.describe()}")
    if fault.action == "redis":
        assert own_redis is not None
        own_redis.stop()
        time.sleep(args.redis_down)
        own_redis.start()
        _say(f"  Redis back (empty) after {args.redis_down:g} s")
        return {"fault": fault.action, "at_events": acked, "down_s": args.redis_down}
    begun = time.monotonic()
    if fault.action == "add":
        workers.start("w2")
    elif fault.action == "remove":
        workers.terminate("w2")
    elif fault.action == "kill":
        workers.kill("w1")
        workers.start("w1")
    else:
        workers.terminate("w1")
        workers.start("w1")
    wait_caught_up(workers, ends, timeout_s=args.timeout, what=fault.action, say=_say)
    took = round(time.monotonic() - begun, 2)
    _say(f"  recovered in {took} s")
    return {"fault": fault.action, "at_events": acked, "recovery_s": took}


def _wait_snapshots(workers: Workers, settle_s: float) -> int:
    """Give the workers up to ``settle_s`` to converge Redis: nothing pending, no resync
    under way or left, Redis up (after an outage, nothing may be pending while the
    resync from the table has not run yet). Returns what is still pending."""
    deadline = time.monotonic() + settle_s
    while True:
        snaps = [s.get("snapshot") or {} for s in workers.stats()]
        pending = sum(s.get("pending", 0) for s in snaps)
        converged = all(
            s.get("redis_up", True)
            and not s.get("resync_running")
            and not s.get("resync_remaining")
            for s in snaps
        )
        if (pending == 0 and converged) or time.monotonic() > deadline:
            return int(pending)
        time.sleep(0.5)


def _figures(
    settings: Settings,
    workload: Workload,
    acked: int,
    recoveries: list[dict[str, Any]],
    pending: int,
    redis_url: str | None,
) -> dict[str, Any]:
    t = settings.topics
    _say("reading back the output topics and the customers changelog")
    changelog = CHANGELOG.format(app_id=settings.app_id)
    read = read_topics(settings.broker, [changelog, *t.outputs()], settings.kafka_security)
    bodies = {
        name: [orjson.loads(r.value) for r in read[topic] if r.value is not None]
        for name, topic in zip(
            ("deadletter", "coupons", "offers", "profiles", "erasures", "service_out",
             "campaigns_out", "pricing"),
            t.outputs(),
            strict=True,
        )
    }
    lines = figures.lineages(
        (r.key.decode(), r.value) for r in read[changelog] if r.key is not None
    )
    states = {c: line.final for c, line in lines.items() if line.final is not None}
    _say(f"running the pure core on the same {len(workload.events)} events")
    limits = Limits(dedupe_window=settings.dedupe_window, recent_views=settings.recent_views)
    core = reference_run(workload.events, t, settings.crm, limits, time.time())
    hashes = read_snapshots(redis_url, states, settings.redis_key_prefix) if redis_url else {}
    published = workload.events[:acked]
    out: dict[str, Any] = figures.application_figures(published, lines)
    out |= figures.duplicate_ids(bodies)
    extra = figures.duplicate_coupon_ids(bodies["coupons"], core.coupons)
    out["duplicate_coupons"] = len(extra)
    where = {
        c["coupon_id"]: f"{c['customer_id']} {c['cart']['cart_id']} {c['stage']}"
        for c in bodies["coupons"]
    }
    out["duplicate_coupon_examples"] = sorted({where[cid] for cid in extra})[:5]
    out["wrong_coupons"] = figures.wrong_coupons(bodies["coupons"], published)
    out["snapshots_stale"] = figures.stale_snapshots(states, hashes) if redis_url else None
    timed = [r["recovery_s"] for r in recoveries if "recovery_s" in r]
    out["recovery_s_max"] = max(timed, default=None)
    out |= {
        "states_differ_from_core": figures.states_differ(states, core.states),
        "customers": len(states),
        "coupons_published": len({c["coupon_id"] for c in bodies["coupons"]}),
        "coupons_core": len({c["coupon_id"] for c in core.coupons}),
        "dead_letters": len(bodies["deadletter"]),
        "outputs_by_topic": {name: len(b) for name, b in bodies.items()},
        "snapshots_pending_at_stop": pending,
        "recoveries": recoveries,
        "broker": settings.broker,
        "partitions": settings.partitions,
    }
    return out
