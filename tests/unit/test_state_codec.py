"""The changelog's compact state encoding round-trips every state of a synthetic run,
reads the plain form too, and is smaller."""

from __future__ import annotations

import orjson

from streamcrm.bench.scaling import workload
from streamcrm.decisions import CrmConfig
from streamcrm.ingest import Processor
from streamcrm.replay.runner import KINDS
from streamcrm.state import CustomerState
from streamcrm.state_codec import decode, encode


def test_every_state_round_trips_and_shrinks() -> None:
    processor = Processor(KINDS, crm=CrmConfig(), clock="event")
    table: dict[str, CustomerState] = {}
    for records, now in workload(2_000, 6_000, 300, seed=3):
        for cid, (_, state) in processor.process(records, table.get, now).states.items():
            table[cid] = state
    states = list(table.values())
    assert any(s.offer is not None and s.offer.items for s in states)
    assert any(s.recent_views for s in states) and any(s.cart for s in states)
    for state in states:
        assert decode(encode(state)) == state
        assert decode(orjson.dumps(state)) == state  # the plain form, as written before
    compact = sum(len(encode(s)) for s in states)
    plain = sum(len(orjson.dumps(s)) for s in states)
    assert compact < 0.8 * plain
