"""``replay --decisions-out``: every emitted offer, offer reward, coupon and profile event,
as JSON lines."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from streamcrm.contract import validator
from streamcrm.replay.adapters import map_rows
from streamcrm.replay.runner import replay
from streamcrm.synthetic import generate
from tests.unit.test_next_best_offer import CONFIG as CONFIG_NO_HOLDOUT


def test_the_sink_receives_exactly_what_the_replay_emitted() -> None:
    lines = [r.value.decode() for r in generate(3000, seed=5, customers=60)]
    mapped, _ = map_rows("jsonl", lines)
    written: list[dict[str, object]] = []
    outcome = replay(mapped, crm=CONFIG_NO_HOLDOUT, decisions=written.extend)
    kinds = Counter(str(e["type"]) for e in written)
    assert kinds["next_best_offer"] == len(outcome.offers) > 0
    assert kinds["coupon_issued"] == len(outcome.coupons) > 0
    assert kinds["customer_profile_updated"] == outcome.profile_events > 0
    assert kinds["offer_reward"] == outcome.offer_rewards > 0
    for event in written:
        validator(str(event["type"])).validate(event)


def test_the_cli_writes_json_lines(tmp_path: Path) -> None:
    log = tmp_path / "shop.jsonl"
    log.write_text("".join(r.value.decode() + "\n" for r in generate(800, seed=3, customers=20)))
    out = tmp_path / "decisions.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "streamcrm", "replay", "--format", "jsonl", str(log), "--json",
         "--decisions-out", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == summary["decisions_written"] > 0
    assert summary["decisions_written"] == (
        summary["offers_emitted"]
        + summary["coupons_issued"]
        + summary["profile_events"]
        + summary["offer_rewards"]
    )
