"""What the pure core decides on the verify workload: the reference the workers are held to. Pure.

The same :class:`~streamcrm.ingest.Processor` the workers run, fed every event in
event-time order (as :mod:`streamcrm.replay.runner` does) on the event clock, so every
deadline is decided on a complete view of its customer; then one sweep at ``now`` fires
what is still due, as the workers' wall clock does once the run has read everything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from streamcrm.config import Topics
from streamcrm.decisions import CrmConfig
from streamcrm.ingest import Processor, Record
from streamcrm.state import CustomerState, Limits
from streamcrm.verify.workload import PublishedEvent

_RANK = {"browse": 0, "cart": 1, "order": 2}
BATCH = 50


@dataclass(frozen=True, slots=True)
class Reference:
    states: dict[str, CustomerState]
    coupons: list[dict[str, Any]]


def reference_run(
    events: Sequence[PublishedEvent], topics: Topics, crm: CrmConfig, limits: Limits, now: float
) -> Reference:
    kinds = topics.inputs()
    topic_of = {kind: name for name, kind in kinds.items()}
    processor = Processor(kinds, limits=limits, crm=crm, clock="event")
    ordered = sorted(events, key=lambda e: (e.ts, _RANK[e.kind]))
    table: dict[str, CustomerState] = {}
    coupons: list[dict[str, Any]] = []
    for start in range(0, len(ordered), BATCH):
        chunk = ordered[start : start + BATCH]
        records = [
            Record(topic_of[e.kind], 0, start + i, e.key, e.value) for i, e in enumerate(chunk)
        ]
        batch = processor.process(records, table.get, max(e.ts for e in chunk))
        table.update({cid: state for cid, (_, state) in batch.states.items()})
        coupons.extend(body for _, body in batch.coupons)
    final = processor.sweep(table.get, now)
    table.update({cid: state for cid, (_, state) in final.states.items()})
    coupons.extend(body for _, body in final.coupons)
    return Reference(table, coupons)
