"""A ``streamcrm worker`` child process, as the demo, replays and benchmarks run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streamcrm.config import Settings
from streamcrm.kafka_security import child_env
from streamcrm.rules import to_toml


def worker_command(settings: Settings, data_dir: Path, rules_file: Path) -> list[str]:
    """The command line that runs a worker with exactly these settings, secrets aside
    (they go in :func:`child_environment`: ``ps`` shows every process's command line).

    The business rules travel whole in ``rules_file`` (:func:`write_rules`), not as flags:
    a rule without a flag would otherwise revert to its default in the child."""
    t = settings.topics
    cmd = [
        sys.executable, "-m", "streamcrm", "worker",
        "--broker", settings.broker, "--partitions", str(settings.partitions),
        "--app-id", settings.app_id, "--web-port", str(settings.web_port),
        "--data-dir", str(data_dir), "--fast-rebalance", "--log-level", settings.log_level,
        "--log-format", settings.log_format,
        "--batch-size", str(settings.batch_size),
        "--topic-browse", t.browse, "--topic-cart", t.cart, "--topic-order", t.order,
        "--topic-deadletter", t.deadletter, "--topic-coupons", t.coupons,
        "--clock", settings.clock, "--rules", str(rules_file),
        "--checkpoint-every", f"{settings.checkpoint_every_s:g}s",
        "--max-record-bytes", str(settings.max_record_bytes),
        "--max-future-skew", f"{settings.max_future_skew_s:g}s",
        "--topic-profiles", t.profiles, "--topic-offers", t.offers,
        "--topic-erasures", t.erasures, "--erasure-hold", f"{settings.erasure_hold_s:g}s",
        "--topic-decisions", t.decisions,
        "--topic-service", t.service, "--topic-service-out", t.service_out,
        "--topic-campaigns", t.campaigns, "--topic-campaigns-out", t.campaigns_out,
        "--topic-pricing", t.pricing, "--topic-sku-demand", t.sku_demand,
    ]  # fmt: skip
    if settings.audit:
        cmd.append("--audit")
    if settings.share_learning:
        cmd += ["--share-learning", "--share-every", f"{settings.share_every_s:g}s"]
    if not settings.price_suggestions:
        cmd.append("--no-price-suggestions")
    if settings.deadletter_retention_s is not None:
        cmd += ["--deadletter-retention", f"{settings.deadletter_retention_s:g}s"]
    return cmd if settings.redis_url else [*cmd, "--no-redis"]


def write_rules(settings: Settings, path: Path) -> Path:
    """The settings' business rules as a rules file that loads back to them exactly."""
    path.write_text(to_toml(settings.crm))
    return path


def child_environment(settings: Settings) -> dict[str, str]:
    """This process's environment plus the secrets a child worker needs: the Kafka login
    and TLS files, the Redis URL (it may hold a password) and the web token."""
    env = {**os.environ, **child_env(settings.kafka_security)}
    if settings.redis_url:
        env["REDIS_URL"] = settings.redis_url
    if settings.web_token:
        env["STREAMCRM_WEB_TOKEN"] = settings.web_token
    return env


class WorkerProcess:
    def __init__(self, settings: Settings, workdir: Path) -> None:
        self.log_path = workdir / "worker.log"
        self.stats_url = f"http://127.0.0.1:{settings.web_port}/stats"
        with open(self.log_path, "ab") as log:
            rules = write_rules(settings, workdir / "rules.toml")
            self.proc = subprocess.Popen(
                worker_command(settings, workdir / "worker-data", rules),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_environment(settings),
            )

    def stats(
        self, *, fresh: bool = False, latency_since: float | None = None
    ) -> dict[str, Any] | None:
        query = {"fresh": "1"} if fresh else {}
        if latency_since is not None:
            query["latency_since"] = repr(latency_since)
        url = self.stats_url + (f"?{urllib.parse.urlencode(query)}" if query else "")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                data: dict[str, Any] = json.loads(response.read())
                return data
        except OSError:
            return None

    def _check_alive(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace").strip().splitlines()[-5:]
            msg = f"the worker exited with code {self.proc.returncode}: " + " | ".join(tail)
            raise RuntimeError(msg)

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check_alive()
            if self.stats() is not None:
                return
            time.sleep(0.2)
        msg = f"the worker did not serve {self.stats_url} within {timeout_s:.0f} s (log: {self.log_path})"
        raise TimeoutError(msg)

    def wait_until(
        self,
        done: Callable[[dict[str, Any]], bool],
        *,
        timeout_s: float,
        what: str,
        progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        last_progress = 0.0
        while True:
            self._check_alive()
            stats = self.stats() or {}
            if stats and done(stats):
                return stats
            if progress is not None and time.monotonic() - last_progress >= 1.0:
                progress(stats)
                last_progress = time.monotonic()
            if time.monotonic() > deadline:
                msg = f"gave up waiting for {what} after {timeout_s:.0f} s (log: {self.log_path})"
                raise TimeoutError(msg)
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
