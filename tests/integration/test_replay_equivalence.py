"""A replay through Kafka and a real worker decides exactly as the in-memory replay."""

from __future__ import annotations

from pathlib import Path

from streamcrm.config import Settings
from streamcrm.decisions import CrmConfig
from streamcrm.replay.adapters import map_rows
from streamcrm.replay.runner import replay
from streamcrm.replay.via_kafka import run_via_kafka
from streamcrm.synthetic import generate

COUNTS = ("events", "applied", "dead_letters", "customers", "carts", "carts_abandoned",
          "reminded", "couponed", "holdout", "suppressed", "recovered", "coupons_issued")  # fmt: skip


def test_in_memory_and_via_kafka_replays_make_the_same_decisions(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    log = tmp_path / "traffic.jsonl"
    log.write_bytes(
        b"\n".join(r.value for r in generate(2500, seed=21, customers=80, bad=12)) + b"\n"
    )
    with log.open() as lines:
        mapped, unmapped = map_rows("jsonl", lines)
    assert not unmapped

    in_memory = replay(mapped, crm=CrmConfig())
    settings = Settings(broker=kafka_bootstrap, partitions=4)
    via_kafka, coupons = run_via_kafka(mapped, settings, explicit_broker=True, timeout_s=180)

    expected = in_memory.summary()
    assert expected["coupons_issued"] > 20 and expected["recovered"] > 0  # a test with teeth
    assert {k: via_kafka[k] for k in COUNTS} == {k: expected[k] for k in COUNTS}
    key = lambda c: c["coupon_id"]  # noqa: E731
    assert sorted(coupons, key=key) == sorted(in_memory.coupons, key=key)
