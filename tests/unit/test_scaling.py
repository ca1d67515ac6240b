"""The scaling figures: every size is run on the same shop, and the table reads them back."""

from __future__ import annotations

from streamcrm.bench import scaling


def test_scaling_runs_every_size_with_everything_else_equal() -> None:
    figures = scaling.scaling(events=400, customers=40, sizes=(50, 100_000))
    rows = figures["rows"]
    assert [r["skus"] for r in rows] == [50, 100_000]
    assert rows[0]["tracked_skus"] <= 50 < rows[1]["tracked_skus"]
    assert all(r["events_per_s"] > 0 and r["learner_mb"] >= 0 for r in rows)
    assert figures["ratio_last_to_first"] == round(
        rows[1]["events_per_s"] / rows[0]["events_per_s"], 3
    )
    lines = scaling.table(figures)
    assert lines[-1] == f"ratio 100,000 / 50 SKUs: {figures['ratio_last_to_first']}"
    assert len(lines) == 4


def test_callgrind_totals_are_read_from_its_output() -> None:
    assert scaling._total("events: Ir\nsummary: 12345\n") == 12345
    assert scaling._total("fl=x\ntotals: 99\n") == 99
