"""TLS for the test harness: a throwaway CA made with ``openssl``, and a Kafka listener
over TLS (Debian's ``stunnel4`` in front of a plaintext Tansu that advertises the stunnel
port, as DESIGN.md describes; this Tansu build's own ``--cert``/``--key`` do not work).

The stunnel listener requires a client certificate signed by the CA (mutual TLS), so
the tests cover the CA file and the client certificate and key at once.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from streamcrm.tansu import Tansu, free_port, wait_for_port


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    wrong_ca: Path  # a CA that signed nothing here


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _ca(folder: Path, name: str) -> tuple[Path, Path]:
    key, cert = folder / f"{name}.key", folder / f"{name}.crt"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert))  # fmt: skip
    return cert, key


def _signed(folder: Path, name: str, ca: tuple[Path, Path], ext: str) -> tuple[Path, Path]:
    key, csr, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.crt"
    extfile = folder / f"{name}.ext"
    extfile.write_text(ext + "\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
             "-keyout", str(key), "-out", str(csr))  # fmt: skip
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
             "-CAcreateserial", "-days", "2", "-out", str(cert), "-extfile", str(extfile))  # fmt: skip
    return cert, key


def make_pki(folder: Path) -> Pki:
    """A CA, a server certificate for 127.0.0.1/localhost, a client certificate, and a
    second, unrelated CA."""
    if shutil.which("openssl") is None:
        pytest.fail("no openssl binary: the TLS tests make their certificates with it")
    folder.mkdir(parents=True, exist_ok=True)
    ca = _ca(folder, "test-ca")
    server = _signed(folder, "server", ca, "subjectAltName=IP:127.0.0.1,DNS:localhost")
    client = _signed(folder, "client", ca, "extendedKeyUsage=clientAuth")
    wrong, _ = _ca(folder, "wrong-ca")
    return Pki(ca[0], server[0], server[1], client[0], client[1], wrong)


def stunnel_binary() -> str:
    binary = shutil.which("stunnel4") or shutil.which("stunnel")
    if binary is None:
        pytest.fail("no stunnel4: ./scripts/setup installs Debian's stunnel4 (as root)")
    return binary


@contextlib.contextmanager
def tls_terminator(
    folder: Path, pki: Pki, accept: int, connect: int, *, client_certs: bool
) -> Iterator[None]:
    """stunnel: TLS on 127.0.0.1:``accept``, plaintext to 127.0.0.1:``connect``."""
    conf = folder / f"stunnel-{accept}.conf"
    lines = [
        "foreground = yes", "pid =", f"output = {folder / f'stunnel-{accept}.log'}",
        "[tls]", f"accept = 127.0.0.1:{accept}", f"connect = 127.0.0.1:{connect}",
        f"cert = {pki.server_cert}", f"key = {pki.server_key}",
    ]  # fmt: skip
    if client_certs:
        lines += [f"CAfile = {pki.ca}", "requireCert = yes", "verifyChain = yes"]
    conf.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen(
        [stunnel_binary(), str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(accept, 10)
        yield
    finally:
        proc.terminate()
        proc.wait(10)


@dataclass(frozen=True)
class TlsKafka:
    address: str  # the TLS listener (stunnel), which Tansu advertises
    pki: Pki


@contextlib.contextmanager
def tls_kafka(folder: Path) -> Iterator[TlsKafka]:
    """A Tansu reachable only over mutual TLS (its plaintext port is loopback-only and
    advertises the TLS port, so clients that bootstrap anywhere end up on TLS)."""
    pki = make_pki(folder / "pki")
    tls_port = free_port()
    tansu = Tansu(folder / "broker-tls.log", advertised_port=tls_port)
    tansu.start()
    try:
        with tls_terminator(folder, pki, tls_port, tansu.port, client_certs=True):
            yield TlsKafka(f"127.0.0.1:{tls_port}", pki)
    finally:
        tansu.stop()
