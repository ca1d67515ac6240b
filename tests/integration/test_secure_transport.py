"""Kafka over TLS for real: a worker end to end through a mutual-TLS listener, and the
one-line errors of clients that get TLS or SASL wrong.

The listener is stunnel in front of Tansu (tests/integration/tls.py), requiring a client
certificate. SASL: this Tansu build's ``--authentication`` offers SCRAM-SHA-256/512 (not
PLAIN), but no user made with ``tansu user create`` could log in (the broker answers
``e=unknown-user``), so only the refusal is tested against it; that the SASL settings
reach every client is a unit test (tests/unit/test_kafka_security.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streamcrm.kafka_security import KafkaSecurity, child_env, client_kwargs
from streamcrm.synthetic import generate
from streamcrm.tansu import Tansu

from .conftest import Deployment, consume
from .tls import TlsKafka

N_EVENTS = 600
N_BAD = 12


def mutual_tls(tls: TlsKafka) -> KafkaSecurity:
    pki = tls.pki
    return KafkaSecurity(
        "SSL", ca_file=str(pki.ca), cert_file=str(pki.client_cert), key_file=str(pki.client_key)
    )


def http_status(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - our worker
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


async def test_a_worker_runs_end_to_end_over_mutual_tls(
    tls_broker: TlsKafka, redis_url: str, tmp_path: Path
) -> None:
    security = mutual_tls(tls_broker)
    dep = Deployment(tls_broker.address, redis_url, tmp_path)
    try:
        worker = dep.start_worker(env=child_env(security), extra=("--log-level", "info"))
        records = list(generate(N_EVENTS, seed=5, customers=40, bad=N_BAD))
        producer = AIOKafkaProducer(
            bootstrap_servers=tls_broker.address, linger_ms=5, **client_kwargs(security)
        )
        await producer.start()
        try:
            for r in records:
                await producer.send(dep.topic_of(r.topic_kind), r.value, key=r.key)
            await producer.flush()
        finally:
            await producer.stop()
        stats = worker.wait_for(lambda s: s["events_in"] >= N_EVENTS, timeout=120, what="events in")
        assert stats["applied"] == N_EVENTS - N_BAD
        assert stats["profile_events"] > 0

        # Decisions out, read back over TLS: every dead letter and every profile update.
        letters = await consume(
            dep.bootstrap, dep.topics.deadletter, expected=N_BAD, security=security
        )
        assert len(letters) == N_BAD
        profiles = await consume(
            dep.bootstrap, dep.topics.profiles, expected=stats["profile_events"], security=security
        )
        assert len(profiles) == stats["profile_events"]
        assert {orjson.loads(m.value)["type"] for m in profiles} == {"customer_profile_updated"}

        # Personal data needs the token; the read-only pages stay open.
        customer = orjson.loads(next(r.value for r in records if r.malformed is None))
        assert worker.get(f"/customers/{customer['customer_id']}") is not None
        url = f"{worker.base_url}/customers/{customer['customer_id']}"
        assert http_status(url)[0] == 401
        assert http_status(url, {"Authorization": "Bearer not-the-token"})[0] == 401
        for page in ("/health", "/metrics", "/dashboard", "/stats"):
            assert http_status(worker.base_url + page)[0] == 200, page
    finally:
        for w in dep.workers:
            w.stop()
    log = worker.log_path.read_text(errors="replace")
    assert "[INFO]" in log  # the run logged at INFO, and none of it shows the token
    assert dep.web_token not in log


def streamcrm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamcrm", *args],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("case", "needles"),
    [
        ("wrong CA", ("TLS with the Kafka broker", "not signed by the CA in --ssl-ca-file")),
        ("plaintext", ("speaks TLS", "use SSL or SASL_SSL")),
        ("no client certificate", ("ended the TLS session", "--ssl-cert-file")),
    ],
)
def test_a_client_that_gets_tls_wrong_fails_in_one_line(
    tls_broker: TlsKafka, case: str, needles: tuple[str, ...]
) -> None:
    pki = tls_broker.pki
    flags = {
        "wrong CA": ["--security-protocol", "SSL", "--ssl-ca-file", str(pki.wrong_ca),
                     "--ssl-cert-file", str(pki.client_cert), "--ssl-key-file", str(pki.client_key)],
        "plaintext": [],
        "no client certificate": ["--security-protocol", "SSL", "--ssl-ca-file", str(pki.ca)],
    }[case]  # fmt: skip
    result = streamcrm("generate", "--events", "5", "--broker", tls_broker.address, *flags)
    assert_one_line_error(result, *needles)


class AuthenticatingTansu(Tansu):
    def command(self) -> list[str]:
        return [*super().command(), "--authentication"]


@pytest.fixture
def sasl_broker(tmp_path: Path) -> Iterator[str]:
    tansu = AuthenticatingTansu(tmp_path / "broker-sasl.log")
    tansu.start()
    yield tansu.address
    tansu.stop()


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_a_refused_sasl_login_fails_in_one_line_without_the_password(
    sasl_broker: str, mechanism: str
) -> None:
    password = "pw-never-printed-7f3a"  # noqa: S105 - refused by the broker anyway
    result = streamcrm(
        "worker", "--broker", sasl_broker, "--security-protocol", "SASL_PLAINTEXT",
        "--sasl-mechanism", mechanism, "--sasl-username", "alice", "--no-redis",
        env={"KAFKA_SASL_PASSWORD": password},
    )  # fmt: skip
    line = assert_one_line_error(result, f"SASL {mechanism} login as 'alice'", "failed")
    assert password not in result.stderr + result.stdout, line
