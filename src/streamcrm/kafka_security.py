"""Kafka transport security: the one place that turns settings into client arguments.

Every Kafka client streamcrm creates (the Faust app, the admin client, the changelog
catch-up consumer, the publisher, bench, replay, verify) takes its security arguments
from :func:`client_kwargs` or, for Faust, :func:`faust_credentials` (which Faust turns
into the same aiokafka arguments). Child worker processes get the settings through the
environment (:func:`child_env`), so a password never appears on a command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

# The environment variables each setting falls back to (cli_flags.py reads them; child
# processes are given them by child_env).
ENV_PROTOCOL = "KAFKA_SECURITY_PROTOCOL"
ENV_MECHANISM = "KAFKA_SASL_MECHANISM"
ENV_USERNAME = "KAFKA_SASL_USERNAME"
ENV_PASSWORD = "KAFKA_SASL_PASSWORD"  # noqa: S105 - the variable's name, not a password
ENV_PASSWORD_FILE = "KAFKA_SASL_PASSWORD_FILE"  # noqa: S105
ENV_CA_FILE = "KAFKA_SSL_CA_FILE"
ENV_CERT_FILE = "KAFKA_SSL_CERT_FILE"
ENV_KEY_FILE = "KAFKA_SSL_KEY_FILE"


class BrokerUnavailable(RuntimeError):
    """The broker could not be reached or refused us; the message says why and how to fix it."""


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """How clients connect: protocol, SASL login, TLS files. The password is never shown."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @property
    def tls(self) -> bool:
        return self.protocol in {"SSL", "SASL_SSL"}

    @property
    def sasl(self) -> bool:
        return self.protocol in {"SASL_PLAINTEXT", "SASL_SSL"}

    def problem(self) -> str | None:
        """What is wrong with these settings, as one line; None if they are usable.

        >>> KafkaSecurity("SASL_SSL", username="svc").problem()
        'SASL_SSL needs a password: set KAFKA_SASL_PASSWORD or --sasl-password-file'
        >>> KafkaSecurity("SSL", ca_file="ca.pem").problem() is None
        True
        """
        checks = (
            (self.protocol not in PROTOCOLS,
             f"--security-protocol {self.protocol!r} is not one of {', '.join(PROTOCOLS)}"),
            (self.sasl_mechanism not in MECHANISMS,
             f"--sasl-mechanism {self.sasl_mechanism!r} is not one of {', '.join(MECHANISMS)}"),
            (self.sasl and not self.username,
             f"{self.protocol} needs a user name: set --sasl-username or {ENV_USERNAME}"),
            (self.sasl and not self.password,
             f"{self.protocol} needs a password: set {ENV_PASSWORD} or --sasl-password-file"),
            (bool(self.ca_file or self.cert_file or self.key_file) and not self.tls,
             f"TLS files are given but --security-protocol is {self.protocol}: use SSL or SASL_SSL"),
            (bool(self.cert_file) != bool(self.key_file),
             "a client certificate needs both --ssl-cert-file and --ssl-key-file"),
        )  # fmt: skip
        return next((message for failed, message in checks if failed), None)


def read_password_file(path: str) -> str:
    """The password in ``path`` (its first line, as Kubernetes secrets mount it)."""
    try:
        with open(path, encoding="utf-8") as file:
            return file.readline().rstrip("\r\n")
    except OSError as exc:
        msg = f"cannot read the SASL password file {path}: {exc.strerror}"
        raise ValueError(msg) from None


def from_env(env: Mapping[str, str]) -> KafkaSecurity:
    """The settings the ``KAFKA_*`` variables give (what a child process inherits).

    >>> from_env({"KAFKA_SECURITY_PROTOCOL": "ssl", "KAFKA_SSL_CA_FILE": "ca.pem"})
    KafkaSecurity(protocol='SSL', sasl_mechanism='PLAIN', username=None, ca_file='ca.pem', cert_file=None, key_file=None)
    """
    password = env.get(ENV_PASSWORD) or None
    if password is None and env.get(ENV_PASSWORD_FILE):
        password = read_password_file(env[ENV_PASSWORD_FILE])
    return KafkaSecurity(
        protocol=(env.get(ENV_PROTOCOL) or "PLAINTEXT").upper(),
        sasl_mechanism=(env.get(ENV_MECHANISM) or "PLAIN").upper(),
        username=env.get(ENV_USERNAME) or None,
        password=password,
        ca_file=env.get(ENV_CA_FILE) or None,
        cert_file=env.get(ENV_CERT_FILE) or None,
        key_file=env.get(ENV_KEY_FILE) or None,
    )


@functools.cache
def ssl_context(security: KafkaSecurity) -> ssl.SSLContext:
    """One verifying TLS context per settings (hostname checked; the CA file if given,
    else the system's CAs; the client certificate if given)."""
    context = ssl.create_default_context(cafile=security.ca_file)
    if security.cert_file:
        context.load_cert_chain(security.cert_file, security.key_file)
    return context


def client_kwargs(security: KafkaSecurity) -> dict[str, Any]:
    """The security arguments of an aiokafka producer, consumer or admin client.

    >>> client_kwargs(KafkaSecurity())
    {'security_protocol': 'PLAINTEXT'}
    >>> sorted(client_kwargs(KafkaSecurity("SASL_PLAINTEXT", "SCRAM-SHA-512", "u", "p")))
    ['sasl_mechanism', 'sasl_plain_password', 'sasl_plain_username', 'security_protocol']
    """
    kwargs: dict[str, Any] = {"security_protocol": security.protocol}
    if security.tls:
        kwargs["ssl_context"] = ssl_context(security)
    if security.sasl:
        kwargs |= {
            "sasl_mechanism": security.sasl_mechanism,
            "sasl_plain_username": security.username,
            "sasl_plain_password": security.password,
        }
    return kwargs


def faust_credentials(security: KafkaSecurity) -> Any:
    """Faust's ``broker_credentials`` for these settings (None for PLAINTEXT). Faust's
    aiokafka driver turns them into exactly :func:`client_kwargs` (a unit test holds it)."""
    import faust

    if security.sasl:
        return faust.SASLCredentials(
            username=security.username,
            password=security.password,
            mechanism=security.sasl_mechanism,
            ssl_context=ssl_context(security) if security.tls else None,
        )
    if security.tls:
        return faust.SSLCredentials(ssl_context(security))
    return None


def child_env(security: KafkaSecurity) -> dict[str, str]:
    """The environment that gives a child ``streamcrm`` process the same settings:
    secrets go through the environment, never the command line (``ps`` shows that)."""
    env = {ENV_PROTOCOL: security.protocol, ENV_MECHANISM: security.sasl_mechanism}
    for name, value in (
        (ENV_USERNAME, security.username),
        (ENV_PASSWORD, security.password),
        (ENV_CA_FILE, security.ca_file),
        (ENV_CERT_FILE, security.cert_file),
        (ENV_KEY_FILE, security.key_file),
    ):
        if value:
            env[name] = value
    return env


async def start_client(
    client: Any, servers: str, security: KafkaSecurity, *, timeout_s: float = 30.0
) -> None:
    """Start an aiokafka client; on failure raise :class:`BrokerUnavailable` with one line
    saying what went wrong (TLS, login, or nothing listening) and how to fix it."""
    from aiokafka.errors import KafkaError

    from streamcrm.kafka_admin import client_errors_muted

    try:
        with client_errors_muted():
            await asyncio.wait_for(client.start(), timeout_s)
    except (TimeoutError, KafkaError, OSError, KeyError, ValueError, AssertionError) as exc:
        with contextlib.suppress(Exception):
            await client.stop() if hasattr(client, "stop") else await client.close()
        reason = await diagnose(servers, security, exc)
        raise BrokerUnavailable(reason) from None


async def diagnose(servers: str, security: KafkaSecurity, exc: BaseException) -> str:
    """One line on why clients cannot use the broker at ``servers``, found by connecting
    to the first one ourselves (aiokafka only says it could not bootstrap)."""
    host, _, port_text = servers.split(",", maxsplit=1)[0].strip().rpartition(":")
    where, host = f"{host}:{port_text}", host.strip("[]")
    fix = "point --broker / KAFKA_BOOTSTRAP_SERVERS at a running broker"
    try:
        port = int(port_text)
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
        writer.close()
    except (OSError, ValueError, TimeoutError) as error:
        return f"cannot reach the Kafka broker at {where} ({type(error).__name__}); {fix}"
    if security.tls:
        tls_problem = await _tls_problem(
            host, port, ssl_context(security), client_cert=bool(security.cert_file)
        )
        if tls_problem:
            return f"TLS with the Kafka broker at {where} failed: {tls_problem}"
    elif await _tls_problem(host, port, _unverified(), ask_kafka=False) is None:
        return (
            f"the Kafka broker at {where} speaks TLS but --security-protocol is "
            f"{security.protocol}: use SSL or SASL_SSL (and --ssl-ca-file)"
        )
    if security.sasl:
        return (
            f"SASL {security.sasl_mechanism} login as {security.username!r} at {where} failed "
            f"({type(exc).__name__}: {exc}); check the user, {ENV_PASSWORD} and --sasl-mechanism"
        )
    return (
        f"the Kafka broker at {where} did not answer as Kafka ({type(exc).__name__}: {exc}); {fix}"
    )


def _unverified() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


# Kafka ApiVersions v0, correlation id 1, client id "streamcrm": sent after the handshake
# so that a server refusing our client certificate (TLS 1.3 says so only then) is seen.
_CLIENT_ID = b"streamcrm"
_API_VERSIONS = struct.pack(">hhih", 18, 0, 1, len(_CLIENT_ID)) + _CLIENT_ID
_API_VERSIONS_FRAME = struct.pack(">i", len(_API_VERSIONS)) + _API_VERSIONS


async def _tls_problem(
    host: str,
    port: int,
    context: ssl.SSLContext,
    *,
    ask_kafka: bool = True,
    client_cert: bool = False,
) -> str | None:
    """None if a TLS handshake (and with ``ask_kafka`` a Kafka answer) works, else what
    failed, in words."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, server_hostname=host), 5
        )
    except ssl.SSLCertVerificationError as error:
        return _verify_words(error, host)
    except (ssl.SSLError, OSError, TimeoutError) as error:
        return f"handshake failed ({_ssl_words(error)})"
    if not ask_kafka:
        writer.close()
        return None
    try:
        writer.write(_API_VERSIONS_FRAME)
        await writer.drain()
        header = await asyncio.wait_for(reader.readexactly(4), 5)
        if not header:
            return "the broker closed the connection"
    except (ssl.SSLError, OSError, TimeoutError, asyncio.IncompleteReadError) as error:
        # Servers that refuse a client certificate (TLS 1.3) end the session after the
        # handshake, often without saying why.
        hint = (
            "it may have refused our client certificate"
            if client_cert
            else "it may require a client certificate: --ssl-cert-file / --ssl-key-file"
        )
        return f"the broker ended the TLS session ({_ssl_words(error)}); {hint}"
    finally:
        writer.close()
    return None


def _verify_words(error: ssl.SSLCertVerificationError, host: str) -> str:
    if "hostname" in str(error.verify_message).lower():
        return f"{error.verify_message}: the broker's certificate is not for {host}"
    return (
        f"{error.verify_message}: the broker's certificate is not signed by the CA in "
        f"--ssl-ca-file / {ENV_CA_FILE}"
    )


def _ssl_words(error: BaseException) -> str:
    reason = getattr(error, "reason", None)
    return str(reason or error or type(error).__name__).lower().replace("_", " ")
