"""Every output of the demo's traffic meets its schema, and valid traffic never errors.

The demo's own workload (``streamcrm demo --events 20000 --seed 7 --bad 200``) through
the decision core on both clocks: every dead letter, coupon, offer and profile update is
validated against ``schemas/``; the only dead letters are the 200 malformed records.
(The fuzzed inputs' outputs are checked the same way in test_properties.py.)
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from streamcrm.contract import validator
from streamcrm.ingest import Processor, Record
from streamcrm.synthetic import generate

KINDS = {"b": "browse", "c": "cart", "o": "order"}
TOPIC = {"browse": "b", "cart": "c", "order": "o"}


@pytest.mark.parametrize("clock", ["event", "wall"])
def test_demo_traffic_outputs_validate_and_nothing_raises(clock: str) -> None:
    synthetic = list(generate(20_000, seed=7, bad=200))
    records = [
        Record(TOPIC[r.topic_kind], hash(r.key) % 4, i, r.key, r.value)
        for i, r in enumerate(synthetic)
    ]
    processor = Processor(KINDS, clock=clock)
    table: dict[str, object] = {}
    counts: Counter[str] = Counter()
    dead: Counter[str] = Counter()
    now = datetime(2026, 11, 1, tzinfo=UTC).timestamp()  # where the traffic starts
    for start in range(0, len(records), 500):
        batch = records[start : start + 500]
        result = processor.process(batch, table.get, now)  # type: ignore[arg-type]
        # Wall clock: the next batch is decided at the latest event time seen so far, as
        # by a worker keeping up with live traffic.
        now = max(now, result.max_event_ts or now)
        for cid, (_, state) in result.states.items():
            table[cid] = state
        for event_type, _, body in result.outputs():
            validator(event_type).validate(body)
            counts[event_type] += 1
        dead.update(result.dead_by_reason)
        assert not result.timer_errors
    assert sum(dead.values()) == 200 and "processing_error" not in dead
    expected = Counter(r.malformed for r in synthetic if r.malformed)
    assert dead == expected
    assert counts["coupon_issued"] > 0 and counts["next_best_offer"] > 0
    assert counts["customer_profile_updated"] > 0
