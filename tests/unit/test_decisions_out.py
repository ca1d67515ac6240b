"""``replay --decisions-out``: every emitted offer, offer reward, coupon and profile event,
as JSON lines."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from dataclasses import replace
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
    ranked = [r for r in rows if r["type"] == "next_best_offer" and r["trigger"] != "win_back"]
    assert ranked and all("exposure" in r for r in ranked)  # what evaluate-policy reads
    assert summary["decisions_written"] == (
        summary["offers_emitted"]
        + summary["coupons_issued"]
        + summary["profile_events"]
        + summary["offer_rewards"]
    )


def test_offers_carry_their_exposure_only_where_it_is_read() -> None:
    """Off by default (an in-memory run nothing reads offers from); on, each ranked offer
    has it, and nothing else differs."""
    from streamcrm.app.agents import processor_for
    from streamcrm.config import Settings

    lines = [r.value.decode() for r in generate(3000, seed=5, customers=60)]
    mapped, _ = map_rows("jsonl", lines)
    off = replay(mapped, crm=CONFIG_NO_HOLDOUT)
    on = replay(mapped, crm=replace(CONFIG_NO_HOLDOUT, offer_exposure=True))
    ranked = [o for o in on.offers if o["trigger"] != "win_back"]
    assert ranked and all("exposure" in o for o in ranked)
    assert not any("exposure" in o for o in off.offers)
    assert [{k: v for k, v in o.items() if k != "exposure"} for o in on.offers] == off.offers
    assert off.summary()["offer_rewards"] == on.summary()["offer_rewards"] > 0
    assert processor_for(Settings()).crm.offer_exposure  # the worker publishes it
