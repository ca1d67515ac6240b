"""``streamcrm uplift`` on a self-made Hillstrom-format campaign with a planted effect."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

from streamcrm.experiments.hillstrom import HEADER, read_hillstrom
from streamcrm.experiments.uplift_command import uplift_figures

EFFECT = 0.3  # the e-mail adds 30 visit points, for men's-only buyers (30%) and nobody else


def _campaign(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    lines = [HEADER]
    for _ in range(n):
        mens_only = rng.random() < 0.3
        mens, womens = (1, 0) if mens_only else (rng.randint(0, 1), 1)
        treated = rng.random() < 0.5
        p = 0.1 + (EFFECT if treated and mens_only else 0.0)
        visit = rng.random() < p
        conversion = visit and rng.random() < 0.2
        segment = "Mens E-Mail" if treated else "No E-Mail"
        lines.append(
            f"{rng.randint(1, 12)},2) $100 - $200,{rng.uniform(30, 900):.2f},{mens},{womens},"
            f"Urban,{rng.randint(0, 1)},Web,{segment},{int(visit)},{int(conversion)},"
            f"{40.0 if conversion else 0.0}"
        )
    return lines


def test_recovers_the_planted_effect_and_ranks_the_responders_first() -> None:
    customers = read_hillstrom(_campaign(6000, seed=4), "made.csv")
    figures = uplift_figures(customers, [1, 2])
    lift = figures["itt"]["visit"]["lift"]
    share = sum(1 for c in customers if c.mens and not c.womens) / len(customers)
    assert lift["ci_low"] <= EFFECT * share <= lift["ci_high"]
    for name in ("baseline", "uplift"):
        for run in figures["learners"][name]["per_seed"]:
            # Top 30% is the responding segment: about 1 / 0.3 times the overall uplift.
            assert run["visit"]["uplift_top30_vs_all"] > 2.5, (name, run["visit"])
            assert run["visit"]["qini"] > 0.1
    assert len(figures["uplift_top30_vs_all"]["uplift"]) == 2
    assert figures["treated"] + figures["control"] == 6000


def test_the_command_prints_json_and_refuses_a_wrong_file(tmp_path: Path) -> None:
    good = tmp_path / "campaign.csv"
    good.write_text("\n".join(_campaign(400, seed=1)) + "\n")
    run = subprocess.run(
        [sys.executable, "-m", "streamcrm", "uplift", "--format", "hillstrom", str(good),
         "--seeds", "3", "--json"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert figures["seeds"] == [3]
    assert set(figures["itt"]) == {"visit", "conversion", "spend_per_customer"}

    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c\n1,2,3\n")
    run = subprocess.run(
        [sys.executable, "-m", "streamcrm", "uplift", "--format", "hillstrom", str(bad)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2
    assert "not the Hillstrom two-arm file" in run.stderr
    assert "Traceback" not in run.stderr
