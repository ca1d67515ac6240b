"""Redis AUTH and TLS for real: a redis-server with a password, an ACL user and a TLS
port (the harness makes its certificates), and a worker that logs at INFO without ever
showing a password or its web token."""

from __future__ import annotations

import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import redis
from aiokafka import AIOKafkaProducer

from streamcrm.redaction import redis_address
from streamcrm.snapshot import snapshot_key
from streamcrm.synthetic import generate
from streamcrm.tansu import free_port, wait_for_port

from .conftest import Deployment
from .test_metrics import scrape
from .tls import Pki, make_pki

DEFAULT_PASSWORD = "default-pw-4c1d"  # noqa: S105 - a throwaway Redis of this test
ACL_USER, ACL_PASSWORD = "streamcrm", "acl-pw-9e2b"
PREFIX = "streamcrm:customer:"
# The least the worker needs, as SECURITY.md recommends: its own keys, no admin commands.
ACL_RULES = (f"~{PREFIX}*", "+@read", "+@write", "+@connection", "+info")


@dataclass
class SecureRedis:
    port: int
    tls_port: int
    pki: Pki

    def url(self, *, tls: bool, user: str = ACL_USER, password: str = ACL_PASSWORD) -> str:
        if tls:
            return (f"rediss://{user}:{password}@127.0.0.1:{self.tls_port}/0"
                    f"?ssl_ca_certs={self.pki.ca}")  # fmt: skip
        return f"redis://{user}:{password}@127.0.0.1:{self.port}/0"


@pytest.fixture(scope="module")
def secure_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("no redis-server binary: these tests need a real Redis")
    workdir = tmp_path_factory.mktemp("secure-redis")
    pki = make_pki(workdir / "pki")
    server = SecureRedis(free_port(), free_port(), pki)
    proc = subprocess.Popen(
        [binary, "--port", str(server.port), "--bind", "127.0.0.1", "--save", "",
         "--dir", str(workdir), "--requirepass", DEFAULT_PASSWORD,
         "--user", ACL_USER, "on", f">{ACL_PASSWORD}", *ACL_RULES,
         "--tls-port", str(server.tls_port), "--tls-cert-file", str(pki.server_cert),
         "--tls-key-file", str(pki.server_key), "--tls-ca-cert-file", str(pki.ca),
         "--tls-auth-clients", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(server.tls_port, 10)
        yield server
    finally:
        proc.terminate()
        proc.wait(10)


async def publish(producer: AIOKafkaProducer, dep: Deployment, n: int) -> set[str]:
    records = list(generate(n, seed=3, customers=30))
    for r in records:
        await producer.send(dep.topic_of(r.topic_kind), r.value, key=r.key)
    await producer.flush()
    return {orjson.loads(r.value)["customer_id"] for r in records}


@pytest.mark.parametrize("tls", [True, False], ids=["tls-acl-user", "plain-acl-user"])
async def test_a_worker_writes_snapshots_as_an_acl_user_and_logs_no_secret(
    kafka_bootstrap: str, secure_redis: SecureRedis, producer: AIOKafkaProducer,
    tmp_path: Path, tls: bool,
) -> None:  # fmt: skip
    url = secure_redis.url(tls=tls)
    dep = Deployment(kafka_bootstrap, url, tmp_path)
    try:
        worker = dep.start_worker(extra=("--log-level", "info"))
        ids = await publish(producer, dep, 400)
        worker.wait_for(
            lambda s: s["events_in"] >= 400 and s["snapshot"]["pending"] == 0,
            timeout=120, what="events in, snapshots written",
        )  # fmt: skip
        client = redis.Redis.from_url(url, decode_responses=True)
        try:
            assert all(client.exists(snapshot_key(cid, PREFIX)) for cid in ids)
        finally:
            client.close()
        assert scrape(worker.base_url + "/metrics")["streamcrm_redis_up"] == 1
    finally:
        worker.stop()
    log = worker.log_path.read_text(errors="replace")
    assert "[INFO]" in log
    for secret in (ACL_PASSWORD, DEFAULT_PASSWORD, dep.web_token):
        assert secret not in log


async def test_a_refused_redis_login_is_logged_without_the_password_and_customers_are_off(
    kafka_bootstrap: str, secure_redis: SecureRedis, producer: AIOKafkaProducer, tmp_path: Path
) -> None:
    wrong = "wrong-pw-77aa"
    url = secure_redis.url(tls=True, password=wrong)
    dep = Deployment(kafka_bootstrap, url, tmp_path)
    try:
        # No web token: /customers is off on this worker.
        worker = dep.start_worker(extra=("--log-level", "info"), env={"STREAMCRM_WEB_TOKEN": ""})
        await publish(producer, dep, 100)
        worker.wait_for(
            lambda s: s["events_in"] >= 100 and s["snapshot"]["redis_up"] is False,
            timeout=120, what="events in, Redis seen refusing us",
        )  # fmt: skip
        request = urllib.request.Request(f"{worker.base_url}/customers/c0")  # noqa: S310
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)  # noqa: S310 - our own worker
        assert refused.value.code == 403
        assert "STREAMCRM_WEB_TOKEN" in orjson.loads(refused.value.read())["error"]
    finally:
        worker.stop()
    log = worker.log_path.read_text(errors="replace")
    assert f"Redis at {redis_address(url)} is unreachable" in log
    assert wrong not in log
    assert ACL_PASSWORD not in log
