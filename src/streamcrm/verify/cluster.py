"""The processes ``streamcrm verify`` runs and breaks: workers, and optionally its own Redis.

Recovery is measured from outside, from the workers' ``/stats``: a fault (a worker
SIGKILLed, SIGTERMed, added or removed) is recovered when every input partition is owned
by a live worker that has processed it up to the end offset the publisher had been
acknowledged when the fault happened. It includes the group's rejoin, the table's
restore and the catch-up on the backlog that built up meanwhile. (The publisher keeps
sending a tick to every input partition each second, so a partition with nothing left
to read still shows its new owner has caught up.)
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from streamcrm.config import Settings
from streamcrm.tansu import free_port, wait_for_port
from streamcrm.worker_process import WorkerProcess

Say = Callable[[str], None]
TopicPartition = tuple[str, int]


class RedisServer:
    """A throwaway ``redis-server`` (no persistence) that can be taken away and brought back empty."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            msg = "no redis-server binary on PATH: install Redis or pass --redis-url"
            raise RuntimeError(msg)
        self.binary = binary
        self.port = free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.port, 10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class Workers:
    """Named ``streamcrm worker`` processes of one app, each in its own folder."""

    def __init__(self, settings: Settings, workdir: Path) -> None:
        self.settings = settings
        self.workdir = workdir
        self.live: dict[str, WorkerProcess] = {}
        self.crashes: list[dict[str, Any]] = []

    def start(self, name: str) -> WorkerProcess:
        folder = self.workdir / name
        folder.mkdir(parents=True, exist_ok=True)
        worker = WorkerProcess(replace(self.settings, web_port=free_port()), folder)
        worker.wait_ready()
        self.live[name] = worker
        return worker

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown hooks, no final commit (a crash)."""
        worker = self.live.pop(name)
        worker.proc.send_signal(signal.SIGKILL)
        worker.proc.wait(10)

    def terminate(self, name: str) -> None:
        """SIGTERM and wait for a clean exit (a deploy, a scale-in)."""
        self.live.pop(name).stop()

    def stop_all(self) -> None:
        for name in list(self.live):
            self.terminate(name)

    def stats(self) -> list[dict[str, Any]]:
        """Stats of the live workers. A worker that exited by itself is a finding: it is
        recorded in ``crashes`` and started again, as an orchestrator would."""
        for name, worker in list(self.live.items()):
            if worker.proc.poll() is not None:
                self.crashes.append({"worker": name, "exit_code": worker.proc.returncode,
                                     "reason": _crash_reason(worker.log_path)})  # fmt: skip
                del self.live[name]
                self.start(name)
        return [s for w in self.live.values() if (s := w.stats()) is not None]


def _crash_reason(log_path: Path) -> str:
    """The last error line of a worker's log (Faust logs the exception before it exits)."""
    lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if "[ERROR]" in line] or lines[-1:]
    return errors[-1][:400] if errors else ""


def processed_upto(stats: list[dict[str, Any]]) -> dict[TopicPartition, int]:
    """Next offset per input partition, from the worker that owns it now."""
    out: dict[TopicPartition, int] = {}
    for s in stats:
        owned = set(s.get("partitions", ()))
        for topic, partition, offset in s.get("next_offsets", ()):
            if partition in owned:
                out[(topic, partition)] = max(out.get((topic, partition), 0), offset)
    return out


def caught_up(
    stats: list[dict[str, Any]], partitions: int, ends: Mapping[TopicPartition, int]
) -> bool:
    owned = {p for s in stats for p in s.get("partitions", ())}
    if owned != set(range(partitions)):
        return False
    done = processed_upto(stats)
    return all(done.get(tp, 0) >= end for tp, end in ends.items() if end > 0)


def wait_caught_up(
    workers: Workers,
    ends: Mapping[TopicPartition, int],
    *,
    timeout_s: float,
    what: str,
    say: Say,
) -> float:
    """Seconds until the live workers own every partition and processed up to ``ends``."""
    started = time.monotonic()
    last_say = started
    while True:
        stats = workers.stats()
        if caught_up(stats, workers.settings.partitions, ends) and all(
            s.get("buffered", 0) == 0 for s in stats
        ):
            return time.monotonic() - started
        now = time.monotonic()
        if now - started > timeout_s:
            msg = f"{what}: the workers did not catch up within {timeout_s:.0f} s"
            raise TimeoutError(msg)
        if now - last_say >= 5:
            done = processed_upto(stats)
            behind = sum(max(end - done.get(tp, 0), 0) for tp, end in ends.items())
            owned = sorted({p for s in stats for p in s.get("partitions", ())})
            say(f"  {what}: {behind} records behind, partitions owned {owned}")
            last_say = now
        time.sleep(0.25)
