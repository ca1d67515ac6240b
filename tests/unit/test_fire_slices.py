"""A burst of deadlines fired in slices (``limit``, as the worker's sweep and batches do):
each call fires at most the limit, and the slices together decide what one unbounded
sweep decides."""

from __future__ import annotations

import uuid

import orjson
import pytest

from streamcrm.crm_config import CrmConfig
from streamcrm.events import format_ts
from streamcrm.ingest import BatchResult, Processor, Record
from streamcrm.policies.contact import ContactConfig
from streamcrm.replay.runner import KINDS
from streamcrm.state import CustomerState

NOW = 1_800_000_000.0
H = 3600.0


def _view(customer: str, offset: int) -> Record:
    body = {"event_id": f"v{offset}", "type": "product_viewed", "customer_id": customer,
            "ts": format_ts(NOW - H), "channel": "web", "sku": f"sale{offset % 3}",
            "category": "tv", "price": 100.0}  # fmt: skip
    return Record("browse", offset % 4, offset, customer.encode(), orjson.dumps(body))


def _announcement() -> Record:
    body = {"event_id": uuid.uuid5(uuid.NAMESPACE_URL, "fs").hex, "type": "flash_sale_announced",
            "ts": format_ts(NOW), "campaign_id": "fs", "skus": ["sale0", "sale1", "sale2"],
            "starts_at": format_ts(NOW), "ends_at": format_ts(NOW + 4 * H),
            "discount_percent": 30}  # fmt: skip
    return Record("campaigns", 0, 0, b"fs", orjson.dumps(body))


def _enrolled(n: int) -> tuple[Processor, dict[str, CustomerState]]:
    """``n`` customers enrolled in a sale that starts now: every notice due at once."""
    processor = Processor(KINDS, crm=CrmConfig(contact=ContactConfig(holdout_share=0.0)))
    table: dict[str, CustomerState] = {}
    viewed = processor.process([_view(f"c{i:03d}", i) for i in range(n)], table.get, NOW - H)
    table.update({c: s for c, (_, s) in viewed.states.items()})
    enrolled = processor.announce(_announcement(), table.get, NOW)
    table.update({c: s for c, (_, s) in enrolled.states.items()})
    assert len(enrolled.states) == n
    return processor, table


def _notices(result: BatchResult) -> list[bytes]:
    return [orjson.dumps(body) for _, body in result.emitted["flash_sale_notification"]]


@pytest.mark.parametrize("limit", [1, 7, 40])
def test_slices_fire_at_most_the_limit_and_decide_what_one_sweep_does(limit: int) -> None:
    whole, whole_table = _enrolled(40)
    once = whole.sweep(whole_table.get, NOW + 1)
    sliced, table = _enrolled(40)
    notices: list[bytes] = []
    calls = 0
    while sliced.next_due() is not None and sliced.next_due() <= NOW + 1:  # type: ignore[operator]
        result = sliced.sweep(table.get, NOW + 1, limit=limit)
        assert 0 < len(result.states) <= limit
        table.update({c: s for c, (_, s) in result.states.items()})
        notices += _notices(result)
        calls += 1
    assert len(once.states) == 40 and calls == -(-40 // limit)
    assert sorted(notices) == sorted(_notices(once))
    assert table == whole_table | {c: s for c, (_, s) in once.states.items()}


def test_a_batch_fires_at_most_the_limit_too() -> None:
    processor, table = _enrolled(20)
    result = processor.process([], table.get, NOW + 1, limit=5)
    assert len(result.states) == 5 and len(_notices(result)) == 5
    assert processor.pending_timers() == 20  # the 15 not fired stay due, the 5 re-armed
