"""The verify figures from changelog lineages, on hand-made states (pure)."""

from __future__ import annotations

from dataclasses import replace

import orjson

from streamcrm.state import CustomerState
from streamcrm.verify import figures
from streamcrm.verify.workload import PublishedEvent


def _event(i: int, customer: str = "c1") -> PublishedEvent:
    return PublishedEvent("browse", customer.encode(), b"", f"e{i}", customer, "product_viewed",
                          float(i), None)  # fmt: skip


def _state(ids: list[str], window: int = 3) -> bytes:
    state = CustomerState("c1", 0.0, 0.0, seen_event_ids=tuple(ids[-window:]),
                          events_applied=len(ids))  # fmt: skip
    return orjson.dumps(state)


def _figures(writes: list[list[str]], published: int) -> dict[str, object]:
    lines = figures.lineages(("c1", _state(ids)) for ids in writes)
    return figures.application_figures([_event(i) for i in range(published)], lines)


def test_batches_that_build_on_each_other_apply_every_event_once() -> None:
    ids = [f"e{i}" for i in range(6)]
    got = _figures([ids[:2], ids[:4], ids], 6)
    assert (got["events_applied"], got["events_lost"], got["events_applied_twice"]) == (6, 0, 0)


def test_an_event_applied_again_after_it_left_the_dedupe_window_counts_twice() -> None:
    ids = [f"e{i}" for i in range(5)]
    got = _figures([ids, [*ids, "e0"]], 5)
    assert (got["events_lost"], got["events_applied_twice"]) == (0, 1)


def test_a_stale_state_written_last_loses_what_it_never_applied() -> None:
    ids = [f"e{i}" for i in range(5)]
    got = _figures([ids, ids[:3]], 5)
    assert (got["events_applied"], got["events_lost"], got["lineage_gaps"]) == (3, 2, 0)


def test_a_step_wider_than_the_window_falls_back_to_counts() -> None:
    ids = [f"e{i}" for i in range(8)]
    got = _figures([ids[:1], ids], 8)  # 7 new ids, 3 visible
    assert (got["lineage_gaps"], got["events_applied"], got["events_lost"]) == (1, 8, 0)


def test_coupons_beyond_the_cores_per_abandonment_or_with_two_bodies_are_duplicates() -> None:
    def coupon(cid: str, version: int, value: float = 10.0) -> dict[str, object]:
        return {"coupon_id": cid, "customer_id": "c1", "stage": "coupon",
                "cart": {"cart_id": "k1", "version": version, "value": value}}  # fmt: skip

    core = [coupon("a", 2)]
    assert figures.duplicate_coupons([coupon("a", 2), coupon("a", 2)], core) == 0
    assert figures.duplicate_coupons([coupon("b", 1), coupon("a", 2)], core) == 1
    assert figures.duplicate_coupons([coupon("a", 2), coupon("a", 2, 11.0)], core) == 1


def test_a_coupon_after_the_carts_order_is_wrong() -> None:
    order = replace(_event(0), type="order_placed", cart_id="k1", ts=100.0)
    due_after = {"coupon_id": "a", "ts": "1970-01-01T00:02:00.000Z", "cart": {"cart_id": "k1"}}
    due_before = {"coupon_id": "b", "ts": "1970-01-01T00:01:00.000Z", "cart": {"cart_id": "k1"}}
    assert figures.wrong_coupons([due_after, due_before], [order]) == 1
