"""The replay's speed-ups give the same bytes and figures as the code they replaced."""

from __future__ import annotations

import gc
import heapq
import random

from streamcrm.events import format_ts
from streamcrm.learning import baselines
from streamcrm.learning.candidates import CandidateStats
from streamcrm.replay import command, evaluation
from streamcrm.replay.adapters import _Carts, derived_price
from streamcrm.state import CustomerState, View


def test_timestamp_text_is_format_ts_for_every_kind_of_time() -> None:
    carts, rng = _Carts(), random.Random(7)
    whole = [float(rng.randrange(0, 253_402_300_800)) for _ in range(5_000)]
    edges = [0.0, 86_399.0, 86_400.0, 1_511_848_894.0, 253_402_300_799.0, 253_402_300_800.0]
    others = [-1.0, -86_401.0, 1_511_848_894.25, 1_511_848_894.9996, 1e300, float("nan")]
    for ts in whole + edges + others:
        assert carts.ts_text(ts) == format_ts(ts), ts
    assert carts.ts_text(1_511_848_894.0) == "2017-11-28T06:01:34.000Z"


def test_price_cache_is_derived_price() -> None:
    carts = _Carts()
    for item in ("2200475", "1", "2200475", "x"):
        assert carts.price(item) == derived_price(item)
    assert len(carts.prices) == 3


def test_cooc_sorts_as_nsmallest_did() -> None:
    rng = random.Random(3)
    stats = CandidateStats()
    skus = [f"s{i}" for i in range(60)]
    for t in range(400):
        sku = rng.choice(skus)
        recent = [(s, t - 1.0) for s in rng.sample(skus, 4)]
        stats.observe(sku, "x", 1.0, ts=float(t), weight=rng.choice([1.0, 3.0]), recent=recent)
    views = tuple(View(s, "x", 1.0, float(i)) for i, s in enumerate(rng.sample(skus, 8)))
    state = CustomerState("c", 0.0, 0.0, recent_views=views)
    excluded = frozenset(rng.sample(skus, 5))
    score: dict[str, float] = {}
    for view in state.recent_views[: baselines.SEEDS]:
        for sku, weight in stats.neighbour_items(view.sku):
            if sku not in excluded:
                score[sku] = score.get(sku, 0.0) + weight
    old = tuple(s for _, s in heapq.nsmallest(10, [(-w, s) for s, w in score.items()]))
    assert len(old) == 10
    assert baselines.cooc(state, stats, excluded) == old


def test_shared_draws_are_read_only_and_the_same() -> None:
    a = evaluation._draws(50, 20, 14)
    assert a is evaluation._draws(50, 20, 14) and not a.flags.writeable
    fresh = evaluation.np.random.default_rng(14).integers(0, 50, size=(20, 50))
    assert (a == fresh).all()


def test_batch_heap_restores_the_collector() -> None:
    before = gc.get_threshold()
    with command._batch_heap():
        assert gc.get_threshold() == (20_000, 20, 10)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
