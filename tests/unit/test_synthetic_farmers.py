"""Coupon farmers in the synthetic shop: off by default, apart from everyone else, valid."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from streamcrm.events import decode
from streamcrm.synthetic import generate


def _customers_events(records: list[bytes]) -> list[bytes]:
    return [v for v in records if orjson.loads(v)["customer_id"].startswith("c")]


def test_zero_shares_are_the_default_and_farmers_leave_ordinary_customers_alone() -> None:
    plain = [r.value for r in generate(4000, seed=7, customers=300)]
    assert plain == [r.value for r in generate(4000, seed=7, customers=300, farmer_share=0.0)]
    mixed = [r.value for r in generate(4000, seed=7, customers=300, farmer_share=0.05)]
    ordinary = _customers_events(mixed)
    assert len(ordinary) < len(mixed)  # farmers take some of the 4000 slots
    assert ordinary == plain[: len(ordinary)]  # everyone else is byte for byte the same


def test_farmers_farm_and_every_record_is_valid() -> None:
    kinds: Counter[str] = Counter()
    coupons: Counter[str] = Counter()
    for r in generate(30_000, seed=3, customers=1000, farmer_share=0.02, coupon_share=0.1):
        event = decode(r.value, topic_kind=r.topic_kind, key=r.key)
        who = "farmer" if event.customer_id.startswith("f") else "normal"
        kinds[who, event.type] += 1
        if event.type == "order_placed":
            coupons[who, "coupon_code" in event.body] += 1
    assert len({k for k in kinds if k[0] == "farmer"}) >= 5
    assert coupons["farmer", False] == 0 and coupons["farmer", True] > 0
    share = coupons["normal", True] / (coupons["normal", True] + coupons["normal", False])
    assert 0.05 < share < 0.15
    assert kinds["farmer", "order_cancelled"] > 0


def test_bad_shares_are_refused() -> None:
    with pytest.raises(ValueError, match="farmer_share"):
        list(generate(5, seed=1, farmer_share=1.5))
