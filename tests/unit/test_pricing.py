"""Price suggestions on a simulated clock: the windows, the test, the bound, the rate limit."""

from __future__ import annotations

import random
from itertools import pairwise
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streamcrm.contract import validator
from streamcrm.events import Event, parse_ts
from streamcrm.pricing.demand import (
    VIEWS,
    DemandConfig,
    SkuDemand,
    add,
    baseline_rate,
    window_count,
)
from streamcrm.pricing.suggest import PricingConfig, observe, tail_z
from streamcrm.pricing.table import SkuTable

H = 3600.0
CFG = PricingConfig()


def view(ts: float, sku: str = "s1") -> Event:
    return Event(f"v{ts}", "product_viewed", "c1", ts, "web", None, {"sku": sku, "category": "x", "price": 9.0})


def poisson_views(rng: random.Random, start: float, end: float, per_hour: float) -> list[Event]:
    out, t = [], start
    while (t := t + rng.expovariate(per_hour / H)) < end:
        out.append(view(t))
    return out


def run(events: list[Event], cfg: PricingConfig = CFG) -> tuple[SkuDemand | None, list[dict[str, Any]]]:
    d, emitted = None, []
    for e in events:
        d, out = observe(d, e, cfg)
        emitted += out
    return d, emitted


def test_a_rise_is_suggested_up_within_the_bound_and_meets_the_schema() -> None:
    rng = random.Random(4)
    events = poisson_views(rng, 0, 24 * H, 10) + poisson_views(rng, 24 * H, 26 * H, 60)
    _, emitted = run(events)
    assert emitted, "six times the demand went unnoticed"
    first = emitted[0]
    validator("price_suggestion").validate(first)
    assert first["direction"] == "up" and 0 < first["change_percent"] <= 15.0
    assert first["evidence"]["z"] >= 4 and first["evidence"]["p_value"] < 1e-4
    assert len(emitted) == 1  # the rest of the two hours is inside the 6 h rate limit


def test_a_fall_is_suggested_down() -> None:
    rng = random.Random(5)
    events = poisson_views(rng, 0, 24 * H, 60) + poisson_views(rng, 24 * H, 27 * H, 5)
    _, emitted = run(events)
    assert [e["direction"] for e in emitted] == ["down"]
    assert -15.0 <= emitted[0]["change_percent"] < 0


def test_steady_demand_and_thin_history_suggest_nothing() -> None:
    _, emitted = run(poisson_views(random.Random(6), 0, 72 * H, 30))
    assert emitted == []
    rng = random.Random(7)  # a rise after 2 h of history: under the 6 h minimum baseline
    _, emitted = run(poisson_views(rng, 0, 2 * H, 10) + poisson_views(rng, 2 * H, 3 * H, 100))
    assert emitted == []


def test_the_rate_limit_allows_one_suggestion_per_six_hours() -> None:
    rng = random.Random(8)
    cfg = PricingConfig(max_change_percent=5.0)
    events = poisson_views(rng, 0, 24 * H, 5) + poisson_views(rng, 24 * H, 40 * H, 200)
    _, emitted = run(events, cfg)
    times = [parse_ts(e["ts"]) for e in emitted]
    assert len(times) >= 2 and all(b - a >= 6 * H for a, b in pairwise(times))
    assert all(abs(e["change_percent"]) <= 5.0 for e in emitted)


def test_windows_count_complete_buckets_and_late_events_are_dropped() -> None:
    dc = DemandConfig(bucket_s=60, window_buckets=10, baseline_s=3600)
    d = None
    for minute in range(30):
        d = add(d, "s1", VIEWS, minute * 60.0 + 1, dc)
    assert d is not None and window_count(d, VIEWS, 30, dc) == 10
    assert len(d.buckets) <= 11
    late = add(d, "s1", VIEWS, 5 * 60.0, dc)  # far behind the window
    assert late == d
    assert round(baseline_rate(d, VIEWS, dc) * 60, 2) == 1.0


def test_the_tail_deviate_tracks_the_exact_poisson_tail() -> None:
    from math import exp, factorial
    from statistics import NormalDist

    for x, mu in ((12, 3.0), (30, 15.0), (2, 12.0), (150, 100.0)):
        pmf = [exp(-mu) * mu**k / factorial(k) for k in range(x + 1)]
        exact = 1 - sum(pmf[:x]) if x > mu else sum(pmf)
        deviate = NormalDist().inv_cdf(1 - exact) if x > mu else NormalDist().inv_cdf(exact)
        assert abs(tail_z(x, mu) - deviate) < 0.2, (x, mu, tail_z(x, mu), deviate)


def test_the_table_holds_at_most_capacity_skus() -> None:
    table = SkuTable(capacity=50)
    rng = random.Random(9)
    for i in range(5000):
        table.observe(view(i * 1.0, f"s{rng.randrange(10_000)}"), CFG)
    assert len(table) == 50 and table.evicted > 4000
    order = Event("o", "order_placed", "c1", 6000.0, "web", None,
                  {"order_id": "o1", "total": 2.0, "lines": [{"sku": "a", "qty": 1, "unit_price": 1.0},
                                                             {"sku": "b", "qty": 1, "unit_price": 1.0}]})  # fmt: skip
    table.observe(order, CFG)
    assert {"a", "b"} <= set(table.skus())


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 900), st.sampled_from(["v", "c", "o"])), min_size=1, max_size=300),
    st.floats(1, 50),
)
def test_any_stream_keeps_state_bounded_and_suggestions_valid(steps: list[Any], max_change: float) -> None:
    cfg = PricingConfig(max_change_percent=max_change, min_baseline_s=H, min_count=3, z_min=2.0)
    clock, d, emitted = 0.0, None, []
    for gap, kind in steps:
        clock += gap
        body: dict[str, Any]
        if kind == "v":
            body, etype = {"sku": "s1", "category": "x", "price": 1.0}, "product_viewed"
        elif kind == "c":
            body, etype = {"cart_id": "k", "sku": "s1", "qty": 1, "unit_price": 1.0}, "cart_item_added"
        else:
            body = {"order_id": "o", "total": 1.0, "lines": [{"sku": "s1", "qty": 1, "unit_price": 1.0}]}
            etype = "order_placed"
        d, out = observe(d, Event("e", etype, "c1", clock, "web", None, body), cfg)
        emitted += out
    assert d is not None and len(d.buckets) <= cfg.demand.window_buckets + 1
    assert SkuDemand.from_dict(orjson.loads(orjson.dumps(d.to_dict()))) == d
    for body in emitted:
        validator("price_suggestion").validate(body)
        assert abs(body["change_percent"]) <= max_change
