"""``streamcrm bench`` end to end on a small load: it runs, and both contenders did the work.

Figures are the benchmark's to print, not the test's to judge (shared machines are noisy):
this checks the command and its report, never a speed.
"""

from __future__ import annotations

import json
import subprocess
import sys


def test_bench_reports_every_figure_and_both_contenders_decide(
    kafka_bootstrap: str, redis_url: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "streamcrm", "bench", "--events", "1500", "--rounds", "1",
         "--partitions", "2", "--broker", kafka_bootstrap, "--redis-url", redis_url, "--json",
         "--customers", "2000", "--skus", "400"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("raw_events_per_s", "naive_faust_events_per_s", "pipeline_events_per_s"):
        assert figures[key] > 0, key
    assert figures["pipeline_vs_naive"] == round(
        figures["pipeline_events_per_s"] / figures["naive_faust_events_per_s"], 2
    )
    assert 0 < figures["latency_p50_ms"] <= figures["latency_p99_ms"]
    assert figures["latency_samples"] > 0
    assert figures["latency_published_events_per_s"] > 0  # what the load generator delivered
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
