"""Redis converges to the table: after an outage, an empty Redis, a SIGTERM with Redis slow.

Each test runs its own ``redis-server`` (so it can stop, flush and pause it, with a
password the worker must never log) and a real worker on the real broker. "Converged"
means every customer's hash equals ``snapshot_fields`` of the state the worker's table
serves at ``/customers/<id>``, every field but ``updated_at`` (the time the snapshot was
written, which depends on ``now``; it is only checked to be a timestamp). The waits are
bounds, not assertions of speed: the time each case took is printed.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import redis
from aiokafka import AIOKafkaProducer

from streamcrm.app.agents import partition_of
from streamcrm.redaction import redis_address
from streamcrm.snapshot import snapshot_fields, snapshot_key
from streamcrm.state import CustomerState
from streamcrm.synthetic import SyntheticRecord, generate
from streamcrm.tansu import free_port, wait_for_port

from .conftest import Deployment, WorkerHandle
from .test_metrics import scrape

PASSWORD = "s3cret-not-for-logs"  # noqa: S105 - a test Redis of its own
PREFIX = "streamcrm:customer:"
PARTITIONS = 4  # the Deployment's default
CONVERGE_WITHIN_S = 90.0  # a bound for a shared, noisy machine; the time taken is printed


class OwnRedis:
    """A redis-server this test may stop, restart (same port, same AOF), flush and pause."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("no redis-server binary: these tests need a real Redis")
        self.binary, self.workdir, self.port = binary, workdir, free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://:{PASSWORD}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--requirepass", PASSWORD, "--dir", str(self.workdir), "--save", "",
             "--appendonly", "yes", "--appendfsync", "always"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.port, 10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # a clean shutdown: the AOF keeps what was written
            self.proc.wait(10)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path / "redis")
    server.workdir.mkdir()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def dep(kafka_bootstrap: str, own_redis: OwnRedis, tmp_path: Path) -> Iterator[Deployment]:
    deployment = Deployment(kafka_bootstrap, own_redis.url, tmp_path)
    yield deployment
    for worker in deployment.workers:
        worker.stop()


async def publish(
    producer: AIOKafkaProducer, dep: Deployment, records: list[SyntheticRecord]
) -> None:
    futures = [await producer.send(dep.topic_of(r.topic_kind), r.value, key=r.key) for r in records]
    for future in futures:
        await future


def traffic(n: int, seed: int, customers: int) -> tuple[list[SyntheticRecord], list[str]]:
    records = list(generate(n, seed=seed, customers=customers))
    return records, sorted({r.key.decode() for r in records})


def stale(
    workers: WorkerHandle | list[WorkerHandle], client: redis.Redis, ids: list[str]
) -> list[str]:
    """Customers whose hash differs from their table state (or is missing). With several
    workers, each customer's state is read from the worker that owns its partition."""
    workers = workers if isinstance(workers, list) else [workers]
    owner_of = {p: w for w in workers for p in w.stats()["partitions"]}
    pipe = client.pipeline(transaction=False)
    for cid in ids:
        pipe.hgetall(snapshot_key(cid, PREFIX))
    hashes = pipe.execute()
    wrong = []
    for cid, got in zip(ids, hashes, strict=True):
        owner = owner_of.get(partition_of(cid, PARTITIONS))
        assert owner is not None, f"no worker owns {cid}'s partition: {sorted(owner_of)}"
        body = owner.get(f"/customers/{cid}")
        assert body is not None, f"{cid} not in the table"
        want = snapshot_fields(CustomerState.from_dict(body), now=0.0)
        written_at = got.pop("updated_at", None)
        want.pop("updated_at")
        if got != want or written_at is None:
            wrong.append(cid)
        else:
            datetime.fromisoformat(written_at)
    return wrong


def wait_converged(
    worker: WorkerHandle | list[WorkerHandle], client: redis.Redis, ids: list[str], what: str
) -> float:
    workers = worker if isinstance(worker, list) else [worker]
    started = time.monotonic()
    while True:
        for w in workers:
            assert w.proc.poll() is None, f"worker died: {w.log_tail()}"
        wrong = stale(workers, client, ids)
        took = time.monotonic() - started
        if not wrong:
            print(f"\n{what}: {len(ids)} customers converged in {took:.1f} s")
            return took
        if took > CONVERGE_WITHIN_S:
            pytest.fail(
                f"{what}: {len(wrong)} of {len(ids)} snapshots still stale after {took:.0f} s "
                f"(e.g. {wrong[:3]}); stats {[w.stats()['snapshot'] for w in workers]}; "
                f"{workers[0].log_tail()}"
            )
        time.sleep(0.3)


def count_log(worker: WorkerHandle, text: str) -> int:
    return worker.log_path.read_text(errors="replace").count(text)


async def test_an_outage_that_ends_on_a_quiet_stream_converges(
    dep: Deployment, own_redis: OwnRedis, producer: AIOKafkaProducer
) -> None:
    records, ids = traffic(3000, seed=21, customers=300)
    first, rest = records[:1000], records[1000:]
    worker = dep.start_worker()
    client = own_redis.client()
    await publish(producer, dep, first)
    worker.wait_for(lambda s: s["events_in"] >= len(first), what="first third in")

    own_redis.stop()  # mid-traffic: the rest is applied to the table while Redis is away
    await publish(producer, dep, rest)
    stats = worker.wait_for(
        lambda s: s["events_in"] >= len(records) and s["snapshot"]["redis_up"] is False,
        timeout=120, what="every event in, Redis seen down",
    )  # fmt: skip
    assert stats["snapshot"]["pending"] > 0
    assert stats["snapshot"]["oldest_unsynced_s"] > 0
    metrics = scrape(worker.base_url + "/metrics")
    assert metrics["streamcrm_redis_up"] == 0
    assert metrics["streamcrm_redis_snapshots_pending"] > 0
    assert metrics["streamcrm_redis_oldest_unsynced_seconds"] > 0
    time.sleep(3)  # the stream stays quiet: nothing but the worker itself rewrites Redis now

    own_redis.start()
    took = wait_converged(worker, client, ids, "outage on a quiet stream")
    address = redis_address(own_redis.url)
    assert count_log(worker, f"Redis at {address} is unreachable") == 1
    assert count_log(worker, f"Redis at {address} is back") == 1
    assert PASSWORD not in worker.log_path.read_text(errors="replace")
    # Redis can hold every customer's state while the resync is still rewriting the
    # rest of the table (the pending writes got there first): wait for both to finish.
    final = worker.wait_for(
        lambda s: s["snapshot"]["pending"] == 0 and not s["snapshot"]["resync_running"],
        what="nothing pending, resync finished",
    )  # fmt: skip
    assert final["snapshot"]["redis_up"] is True
    assert final["snapshot"]["oldest_unsynced_s"] is None
    assert final["snapshot"]["resyncs"]["redis_back"] >= 1
    assert final["snapshot"]["resync_remaining"] == 0
    metrics = scrape(worker.base_url + "/metrics")
    assert metrics["streamcrm_redis_up"] == 1
    assert metrics["streamcrm_redis_snapshots_pending"] == 0
    assert metrics["streamcrm_redis_oldest_unsynced_seconds"] == 0
    assert metrics['streamcrm_redis_resyncs_total{reason="redis_back"}'] >= 1
    assert metrics["streamcrm_redis_resync_remaining"] == 0
    print(f"outage: converged {took:.1f} s after Redis restarted; {final['snapshot']}")


async def test_redis_that_comes_back_empty_gets_every_hash_back(
    dep: Deployment, own_redis: OwnRedis, producer: AIOKafkaProducer
) -> None:
    records, ids = traffic(2000, seed=22, customers=300)
    worker = dep.start_worker()
    client = own_redis.client()
    await publish(producer, dep, records)
    worker.wait_for(lambda s: s["events_in"] >= len(records), timeout=120, what="every event in")
    wait_converged(worker, client, ids, "before the flush")

    client.flushall()  # Redis is up and empty: no write fails, so only the marker can tell
    assert not any(client.exists(snapshot_key(cid, PREFIX)) for cid in ids[:20])
    took = wait_converged(worker, client, ids, "after FLUSHALL")
    snap = worker.stats()["snapshot"]
    assert snap["resyncs"]["marker_lost"] >= 1
    assert snap["resyncs"]["assigned"] == 1  # the start; a flush is not a reassignment
    print(f"FLUSHALL: converged in {took:.1f} s; {snap}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_a_stop_while_redis_is_slow_leaves_nothing_stale_after_restart(
    dep: Deployment, own_redis: OwnRedis, producer: AIOKafkaProducer, sig: signal.Signals
) -> None:
    """SIGTERM flushes for at most 5 s and a SIGKILL not at all: with Redis paused, either
    leaves snapshots behind, and the next start rewrites them from the table."""
    records, ids = traffic(3000, seed=23, customers=300)
    first, rest = records[:1000], records[1000:]
    worker = dep.start_worker("w1")
    client = own_redis.client()
    await publish(producer, dep, first)
    worker.wait_for(lambda s: s["events_in"] >= len(first), what="first third in")
    wait_converged(worker, client, ids_in(first), "before the pause")

    client.execute_command("CLIENT", "PAUSE", "60000", "WRITE")  # reads answer, writes hang
    try:
        await publish(producer, dep, rest)
        stats = worker.wait_for(
            lambda s: s["events_in"] >= len(records) and s["snapshot"]["pending"] > 0,
            timeout=120, what="every event in, snapshots pending",
        )  # fmt: skip
        print(f"\nat {sig.name}: {stats['snapshot']}")
        behind = stale(worker, client, ids)  # reads still answer while writes hang
        assert behind, "the pause should have left snapshots behind the table"
        started = time.monotonic()
        worker.proc.send_signal(sig)
        worker.proc.wait(60)
        print(f"w1 exited {time.monotonic() - started:.1f} s after {sig.name}")
        assert count_log(worker, "still unwritten to Redis at") == (sig == signal.SIGTERM)
    finally:
        client.execute_command("CLIENT", "UNPAUSE")

    restarted = dep.start_worker("w2")
    restarted.wait_for(lambda s: s["customers"] == len(ids), timeout=120, what="table restored")
    took = wait_converged(restarted, client, ids, f"after {sig.name} and restart")
    print(f"{sig.name} with Redis paused: {len(behind)} stale at exit; converged {took:.1f} s "
          f"after the restarted worker served; {restarted.stats()['snapshot']}")  # fmt: skip


async def test_two_workers_after_a_rebalance_each_resync_their_own_partitions(
    dep: Deployment, own_redis: OwnRedis, producer: AIOKafkaProducer
) -> None:
    """A marker per partition: a worker that finds its partitions' markers gone rewrites
    them, whatever the other worker found or wrote first."""
    records, ids = traffic(2000, seed=24, customers=300)
    w1 = dep.start_worker("w1")
    client = own_redis.client()
    await publish(producer, dep, records[:1000])
    w1.wait_for(lambda s: s["events_in"] >= 1000, what="first half in")
    w2 = dep.start_worker("w2")
    both = [w1, w2]
    w1.wait_for(
        lambda s: len(s["partitions"]) == PARTITIONS // 2
        and len(w2.stats()["partitions"]) == PARTITIONS // 2,
        timeout=120, what="partitions split between two workers",
    )  # fmt: skip
    await publish(producer, dep, records[1000:])
    w1.wait_for(
        lambda s: s["events_in"] + w2.stats()["events_in"] >= len(records)
        and s["lag"] == 0
        and w2.stats()["lag"] == 0,
        timeout=120, what="every event in",
    )  # fmt: skip
    wait_converged(both, client, ids, "after the rebalance")

    client.flushall()
    took = wait_converged(both, client, ids, "two workers, after FLUSHALL")
    for w in both:
        assert w.stats()["snapshot"]["resyncs"]["marker_lost"] >= 1
    print(f"two workers, FLUSHALL: converged in {took:.1f} s")


def ids_in(records: list[SyntheticRecord]) -> list[str]:
    return sorted({r.key.decode() for r in records})
