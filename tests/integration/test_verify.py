"""``streamcrm verify``, short: a small workload, one SIGKILL, a worker added and removed,
a SIGTERM restart, against the harness's broker (verify starts its own Redis)."""

from __future__ import annotations

import json
import subprocess
import sys

N_EVENTS = 1500


def test_verify_short_run_loses_nothing_applies_nothing_twice_and_sends_no_duplicate_coupon(
    kafka_bootstrap: str,
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "streamcrm", "verify", "--broker", kafka_bootstrap,
         "--events", str(N_EVENTS), "--customers", "150", "--rate", "60", "--kills", "1",
         "--settle", "20", "--json"],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    print(proc.stderr)
    lines = proc.stdout.strip().splitlines()
    assert lines, f"no output; stderr: {proc.stderr[-2000:]}"
    result = json.loads(lines[-1])
    assert result["events_published"] == N_EVENTS
    assert [r["fault"] for r in result["recoveries"]] == ["add", "kill", "remove", "term"]
    assert result["events_lost"] == 0, result
    assert result["events_applied_twice"] == 0, result
    assert result["events_applied"] == N_EVENTS
    assert result["duplicate_coupons"] == 0, result
    assert result["worker_crashes"] == [], result["worker_crashes"]  # none exited by itself
    assert result["coupons_published"] > 0  # deadlines were due: the check had something to check
