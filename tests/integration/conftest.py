"""The real-parts harness: a Kafka-protocol broker, a Redis, and real worker processes.

- Broker: ``KAFKA_BOOTSTRAP_SERVERS`` if set (e.g. Apache Kafka from docker-compose), else
  an embedded Tansu broker on a free port, one per test session.
- Redis: ``REDIS_URL`` if set, else our own ``redis-server`` on a free port (so tests may
  flush it). Neither available is an error, never a skip.
- Workers: ``streamcrm worker`` subprocesses with a unique app id and unique topics per
  test, so tests never see each other's offsets or state, each with a web token
  (``STREAMCRM_WEB_TOKEN``) that :meth:`WorkerHandle.get` sends.
- TLS (``tls_broker``): a Tansu behind stunnel with a throwaway CA (tests/integration/tls.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streamcrm.config import Topics
from streamcrm.kafka_security import KafkaSecurity, client_kwargs
from streamcrm.tansu import embedded_broker, free_port, wait_for_port

from .tls import TlsKafka, tls_kafka

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    log = tmp_path_factory.mktemp("tansu") / "broker.log"
    with embedded_broker(log) as address:
        yield address


@pytest.fixture(scope="session")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsKafka]:
    with tls_kafka(tmp_path_factory.mktemp("tls")) as broker:
        yield broker


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("REDIS_URL")
    if configured:
        yield configured
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "no redis-server binary and no REDIS_URL: the integration tests need a real Redis"
        )
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, 10)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@dataclass
class WorkerHandle:
    """One ``streamcrm worker`` process."""

    proc: subprocess.Popen[bytes]
    web_port: int
    log_path: Path
    token: str | None = None  # the worker's STREAMCRM_WEB_TOKEN, sent by get()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def get(self, path: str) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        request = urllib.request.Request(self.base_url + path, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = self.get("/stats")
        return data

    def wait_for(
        self, predicate: Any, timeout: float = 60.0, what: str = "condition"
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        stats: dict[str, Any] = {}
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"worker died: {self.log_tail()}"
            try:
                stats = self.stats()
            except OSError:
                time.sleep(0.2)
                continue
            if predicate(stats):
                return stats
            time.sleep(0.2)
        pytest.fail(f"timed out waiting for {what}; last stats {stats}; log: {self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no final commit (the crash case)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@dataclass
class Deployment:
    """One isolated streamcrm deployment: its own app id, topics and Redis key prefix."""

    bootstrap: str
    redis_url: str
    workdir: Path
    partitions: int = 4
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    workers: list[WorkerHandle] = field(default_factory=list)
    web_token: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def topics(self) -> Topics:
        return Topics().prefixed(f"t{self.run_id}.")

    @property
    def app_id(self) -> str:
        return f"streamcrm-test-{self.run_id}"

    def start_worker(
        self,
        name: str = "w1",
        *,
        redis: bool = True,
        wait: bool = True,
        ready_s: float = 60.0,
        extra: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> WorkerHandle:
        port = free_port()
        t = self.topics
        log_path = self.workdir / f"{name}.log"
        cmd = [
            sys.executable,
            "-m",
            "streamcrm",
            "worker",
            "--broker",
            self.bootstrap,
            "--partitions",
            str(self.partitions),
            "--app-id",
            self.app_id,
            "--web-port",
            str(port),
            "--data-dir",
            str(self.workdir / f"data-{name}"),
            "--fast-rebalance",
            "--topic-browse",
            t.browse,
            "--topic-cart",
            t.cart,
            "--topic-order",
            t.order,
            "--topic-deadletter",
            t.deadletter,
            "--batch-size",
            "200",
        ]
        cmd += [
            "--topic-coupons",
            t.coupons,
            "--topic-profiles",
            t.profiles,
            "--topic-offers",
            t.offers,
            "--topic-erasures",
            t.erasures,
            "--topic-service",
            t.service,
            "--topic-service-out",
            t.service_out,
            "--topic-campaigns",
            t.campaigns,
            "--topic-campaigns-out",
            t.campaigns_out,
            "--topic-pricing",
            t.pricing,
            "--topic-sku-demand",
            t.sku_demand,
            *extra,
        ]
        cmd += [] if redis else ["--no-redis"]
        # Secrets through the environment, as in production: ps shows command lines.
        env = {"STREAMCRM_WEB_TOKEN": self.web_token, "REDIS_URL": self.redis_url, **(env or {})}
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env}
            )
        handle = WorkerHandle(proc, port, log_path, env["STREAMCRM_WEB_TOKEN"] or None)
        self.workers.append(handle)
        if wait:
            handle.wait_for(lambda s: True, timeout=ready_s, what=f"worker {name} web server")
        return handle

    def topic_of(self, kind: str) -> str:
        return {name: getattr(self.topics, name) for name in self.topics.inputs().values()}[kind]


@pytest.fixture
def deployment(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Deployment]:
    dep = Deployment(kafka_bootstrap, redis_url, tmp_path)
    yield dep
    for worker in dep.workers:
        worker.stop()
    # Keep worker logs of failed tests where CI can pick them up.
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        dest = ARTIFACTS / request.node.name
        dest.mkdir(parents=True, exist_ok=True)
        for log in tmp_path.glob("*.log"):
            shutil.copy(log, dest / log.name)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    prod = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=5)
    await prod.start()
    yield prod
    await prod.stop()


async def consume(
    bootstrap: str,
    topic: str,
    *,
    expected: int,
    timeout: float = 30.0,
    settle: float = 1.0,
    security: KafkaSecurity | None = None,
) -> list[Any]:
    """Read a topic from the start until ``expected`` records arrived, then ``settle`` s more
    (so that an extra, unwanted record would also be seen)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        **client_kwargs(security or KafkaSecurity()),
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        settle_until: float | None = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for msgs in batch.values():
                records.extend(msgs)
            if len(records) >= expected:
                settle_until = settle_until or time.monotonic() + settle
                if time.monotonic() >= settle_until:
                    break
    finally:
        await consumer.stop()
    return records
