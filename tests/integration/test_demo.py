"""``streamcrm demo`` end to end: its own embedded broker, a worker process, the generator."""

from __future__ import annotations

import json
import subprocess
import sys


def test_demo_accounts_for_every_event_and_every_bad_one(redis_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "streamcrm", "demo", "--events", "3000", "--seed", "3",
         "--bad", "60", "--customers", "150", "--redis-url", redis_url, "--demand-shifts", "0"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["events_in"] == 3000
    assert summary["dead_letters"] == 60
    assert summary["applied"] == 3000 - 60
    assert sum(summary["dead_letters_by_reason"].values()) == 60
    assert summary["customers"] > 100
    assert summary["snapshot_writes"] > 0
    for key in ("coupons_issued", "offers_emitted", "elapsed_s", "events_per_s"):
        assert key in summary
    assert "processed" in result.stderr  # progress was shown while it ran
    # The worker's readouts: every abandoned cart is in one arm of the lift readout, and
    # the withheld incentives add up by reason.
    lift = summary["lift"]
    arms = lift["treatment"]["carts_abandoned"] + lift["holdout"]["carts_abandoned"]
    assert arms == summary["carts_abandoned"] > 0
    withheld = summary["incentives_withheld_by_reason"]
    assert summary["incentives_withheld"] == sum(withheld.values())
