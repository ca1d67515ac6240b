"""Kafka security settings reach every client, the same way; the password never shows."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from streamcrm.kafka_security import (
    MECHANISMS,
    PROTOCOLS,
    KafkaSecurity,
    child_env,
    client_kwargs,
    faust_credentials,
    from_env,
)

SRC = Path(__file__).resolve().parents[2] / "src" / "streamcrm"


def settings(protocol: str, mechanism: str) -> KafkaSecurity:
    return KafkaSecurity(protocol, mechanism, username="svc-crm", password="s3cret-pw")  # noqa: S106


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_faust_gets_exactly_the_arguments_every_other_client_gets(
    protocol: str, mechanism: str
) -> None:
    security = settings(protocol, mechanism)
    assert dict(credentials_to_aiokafka_auth(faust_credentials(security))) | {
        "ssl_context": None
    } == client_kwargs(security) | {"ssl_context": None}


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
def test_tls_protocols_hand_every_client_the_same_verifying_context(protocol: str) -> None:
    security = settings(protocol, "SCRAM-SHA-512")  # no CA file: the system's CAs
    kwargs = client_kwargs(security)
    faust_kwargs = credentials_to_aiokafka_auth(faust_credentials(security))
    assert kwargs["security_protocol"] == faust_kwargs["security_protocol"] == protocol
    assert kwargs["ssl_context"] is faust_kwargs["ssl_context"]  # one context, made once
    assert kwargs["ssl_context"].check_hostname
    if protocol == "SASL_SSL":
        assert kwargs["sasl_mechanism"] == faust_kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
        assert kwargs["sasl_plain_password"] == faust_kwargs["sasl_plain_password"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_a_child_process_gets_the_same_settings_through_its_environment(
    protocol: str, mechanism: str
) -> None:
    security = KafkaSecurity(protocol, mechanism, "svc", "pw", "/ca.pem", "/c.pem", "/k.pem")
    assert from_env(child_env(security)) == security


def test_the_password_is_never_in_the_settings_repr() -> None:
    security = settings("SASL_SSL", "PLAIN")
    assert "s3cret-pw" not in repr(security)
    assert "s3cret-pw" not in repr(faust_credentials(security))


def test_a_password_file_gives_its_first_line(tmp_path: Path) -> None:
    path = tmp_path / "password"
    path.write_text("from-a-file\nignored\n")
    assert from_env({"KAFKA_SASL_PASSWORD_FILE": str(path)}).password == "from-a-file"  # noqa: S105


def _kafka_client_calls() -> list[tuple[str, ast.Call]]:
    calls = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                if name.split(".")[-1] in {
                    "AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient", "App",
                }:  # fmt: skip
                    calls.append((f"{path.relative_to(SRC)}: {name}", node))
    return calls


def test_every_kafka_client_the_project_creates_takes_the_security_settings() -> None:
    calls = _kafka_client_calls()
    # The Faust app, its benchmark twin, admin, catch-up, publisher, bench, replay, verify.
    assert len(calls) >= 8, [where for where, _ in calls]
    for where, call in calls:
        keywords = {k.arg: ast.unparse(k.value) for k in call.keywords}
        if where.endswith("App"):
            assert keywords.get("broker_credentials", "").startswith("faust_credentials("), where
        else:
            assert any(k.arg is None and "client_kwargs(" in ast.unparse(k.value)
                       for k in call.keywords), where  # fmt: skip


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["--security-protocol", "SASL_SSL", "--sasl-username", "u"], {}, "needs a password"),
        (["--security-protocol", "SASL_PLAINTEXT"], {"KAFKA_SASL_PASSWORD": "x"}, "needs a user"),
        (["--ssl-ca-file", "/nonexistent/ca.pem"], {}, "use SSL or SASL_SSL"),
        (["--security-protocol", "SSL", "--ssl-ca-file", "/nonexistent/ca.pem"], {}, "no such file"),
        (["--security-protocol", "TLS"], {}, "invalid choice"),
        (["--sasl-password-file", "/nonexistent/pw"], {}, "cannot read the SASL password file"),
    ],
)
def test_bad_security_settings_say_what_is_wrong_in_one_line(
    args: list[str], env: dict[str, str], needle: str
) -> None:
    import os

    result = subprocess.run(
        [sys.executable, "-m", "streamcrm", "worker", *args],
        capture_output=True, text=True, timeout=60, check=False, env={**os.environ, **env},
    )  # fmt: skip
    assert result.returncode == 2
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


def test_a_child_worker_gets_its_secrets_through_the_environment_not_its_command_line(
    tmp_path: Path,
) -> None:
    from streamcrm.config import Settings
    from streamcrm.worker_process import child_environment, worker_command

    secure = Settings(
        redis_url="rediss://crm:redis-pw-1@cache:6380/0",
        kafka_security=settings("SASL_SSL", "SCRAM-SHA-256"),
        web_token="web-token-2",  # noqa: S106
    )
    command = " ".join(worker_command(secure, tmp_path, tmp_path / "rules.toml"))
    for secret in ("redis-pw-1", "s3cret-pw", "web-token-2"):
        assert secret not in command
    env = child_environment(secure)
    assert env["REDIS_URL"] == secure.redis_url
    assert env["STREAMCRM_WEB_TOKEN"] == "web-token-2"  # noqa: S105
    assert from_env(env) == secure.kafka_security
