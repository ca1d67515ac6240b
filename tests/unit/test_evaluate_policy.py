"""``streamcrm evaluate-policy --format obd`` on self-made logs with known click rates."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

from streamcrm.ope.command import obd_figures
from streamcrm.ope.obd import read_item_context, read_log

RATES = {0: 0.30, 1: 0.05, 2: 0.10, 3: 0.02, 4: 0.08}  # click rate per item, any position
HEADER = ",timestamp,item_id,position,click,propensity_score,user_feature_0"


def _log(n: int, choose: dict[int, float], seed: int) -> list[str]:
    rng = random.Random(seed)
    items, weights = list(choose), list(choose.values())
    lines = [HEADER]
    for i in range(n):
        item = rng.choices(items, weights)[0]
        click = int(rng.random() < RATES[item])
        lines.append(f"{i},2019-11-24 00:00:00+00:00,{item},{i % 3 + 1},{click},{choose[item]},u")
    return lines


def _write(root: Path) -> float:
    uniform = dict.fromkeys(RATES, 0.2)
    greedy = {0: 0.6, 1: 0.1, 2: 0.1, 3: 0.1, 4: 0.1}
    for name, policy, seed in (("random", uniform, 1), ("bts", greedy, 2)):
        (root / name).mkdir(parents=True)
        (root / name / "all.csv").write_text("\n".join(_log(6000, policy, seed)) + "\n")
        (root / name / "item_context.csv").write_text(
            ",item_id,item_feature_0,item_feature_1\n"
            + "".join(f"{i},{i},{i * 0.1},h{i % 2}\n" for i in RATES)
        )
    return sum(p * RATES[i] for i, p in greedy.items())


def test_estimates_from_the_random_log_cover_the_other_policys_ctr(tmp_path: Path) -> None:
    expected = _write(tmp_path)  # 0.206
    random_log = read_log((tmp_path / "random/all.csv").open(), "r")
    bts_log = read_log((tmp_path / "bts/all.csv").open(), "b")
    items = read_item_context((tmp_path / "random/item_context.csv").open(), "i")
    figures = obd_figures(random_log, bts_log, items, resamples=300, seed=1)
    bts = figures["policies"]["bts"]
    assert bts["on_policy_ctr"]["ci_low"] <= expected <= bts["on_policy_ctr"]["ci_high"]
    for estimator in ("ips", "snips", "dr"):
        assert bts[estimator]["covers_on_policy_ctr"], (estimator, bts[estimator])
        assert bts[estimator]["relative_error"] < 0.15
    # Popularity is the single most-clicked item set of the BTS log: item 0 leads it.
    assert figures["policies"]["popularity"]["ips"]["estimate"] > random_log.ctr


def test_the_command_prints_json_and_names_a_missing_log(tmp_path: Path) -> None:
    _write(tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "streamcrm", "evaluate-policy", "--format", "obd",
         str(tmp_path), "--resamples", "200", "--json"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(figures["policies"]) == {"bts", "uniform", "popularity"}
    run = subprocess.run(
        [sys.executable, "-m", "streamcrm", "evaluate-policy", "--format", "obd",
         str(tmp_path / "nowhere")],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2
    assert "not found" in run.stderr
    assert "Traceback" not in run.stderr
