"""``streamcrm bench`` end to end on a small load: it runs, and both contenders did the work.

Figures are the benchmark's to print, not the test's to judge (shared machines are noisy):
this checks the command and its report, never a speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_bench_reports_every_figure_and_both_contenders_decide(
    kafka_bootstrap: str, redis_url: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "streamcrm", "bench", "--events", "1500", "--rounds", "1",
         "--partitions", "2", "--broker", kafka_bootstrap, "--redis-url", redis_url, "--json",
         "--customers", "2000", "--skus", "400", "--latency-rate", "300"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("raw_events_per_s", "naive_faust_events_per_s", "pipeline_events_per_s"):
        assert figures[key] > 0, key
    # The ratio is taken before the rates are rounded for printing (0.01 apart at most).
    ratio = figures["pipeline_events_per_s"] / figures["naive_faust_events_per_s"]
    assert abs(figures["pipeline_vs_naive"] - ratio) < 0.011
    assert 0 < figures["latency_p50_ms"] <= figures["latency_p99_ms"]
    assert figures["latency_samples"] > 0
    assert figures["latency_published_events_per_s"] > 0  # what the load generator delivered
    assert figures["latency_offered_events_per_s"] == 300.0
    assert figures["peak_rss_mb"] > 0 and figures["state_bytes_per_customer"] > 0
    # The naive agent does the same work: it issues coupons and offers too.
    for contender in ("naive", "pipeline"):
        decided = figures["decisions"][contender]
        assert decided["coupons_issued"] > 0 and decided["offers_emitted"] > 0, contender
    assert "round 1: naive Faust" in result.stderr  # progress was shown while it ran
    rows = figures["scaling"]["rows"]
    assert [r["skus"] for r in rows] == [1_000, 10_000, 100_000, 1_000_000]
    assert all(r["events_per_s"] > 0 and r["tracked_skus"] > 0 for r in rows)
    assert "ratio 1,000,000 / 1,000 SKUs" in result.stderr


def taobao_rows(users: int, per_user: int) -> list[str]:
    """A small Taobao UserBehavior-format log: views, carts and buys, a minute apart."""
    rows = []
    for u in range(users):
        for i in range(per_user):
            item = (u * 7 + i * 13) % 400
            behavior = "buy" if i % 10 == 9 else "cart" if i % 10 == 8 else "pv"
            rows.append(f"{1000 + u},{item},{item % 30},{behavior},{1511900000 + 60 * (u + i * users)}")
    return rows


def test_bench_on_a_real_log_format(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> None:
    log = tmp_path / "taobao.csv"
    log.write_text("\n".join(taobao_rows(users=60, per_user=20)) + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "streamcrm", "bench", "--events", "1000", "--rounds", "1",
         "--partitions", "2", "--broker", kafka_bootstrap, "--redis-url", redis_url, "--json",
         "--workload", "taobao", str(log), "--latency-rate", "300"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["workload"]["source"] == "taobao:taobao.csv"
    assert figures["workload"]["events"] == 1200 and figures["workload"]["unmapped_rows"] == {}
    assert figures["events"] == 1000  # --events caps what is published from the log
    assert figures["customers"] == 60 and figures["skus"] == 400
    assert figures["pipeline_events_per_s"] > 0 and figures["naive_faust_events_per_s"] > 0
    assert figures["latency_samples"] > 0
    for contender in ("naive", "pipeline"):
        assert figures["decisions"][contender]["offers_emitted"] > 0, contender
    assert "publishing 1000 taobao:taobao.csv events" in result.stderr
