"""The column path of offer scoring gives what the per-row path gave, bit for bit."""

from __future__ import annotations

import math
import random

from streamcrm.learning.candidates import CandidateStats
from streamcrm.learning.offer_features import (
    FEATURES,
    OWN,
    UNKNOWN,
    Rows,
    features,
    table,
)
from streamcrm.learning.ranking import OfferRanker
from streamcrm.state import CustomerState, View

NOW = 100_000.0


def reference_rows(
    state: CustomerState, skus: list[str], stats: CandidateStats, now: float,
    cooc: dict[str, float], popularity: dict[str, float],
) -> dict[str, dict[str, float]]:  # fmt: skip
    """features() as it was: one dict per candidate, built in one loop."""
    views = state.recent_views
    history = {v.sku: (i, v) for i, v in reversed(list(enumerate(views)))}
    counts: dict[str, int] = {}
    for v in views:
        counts[v.category] = counts.get(v.category, 0) + 1
    n = len(views) or 1
    log_mean = sum(math.log(max(v.price, 0.01)) for v in views) / n if views else None
    last = views[0] if views else None
    last_neighbours = stats.cooc.get(last.sku, {}) if last is not None else {}
    last_category = last.category if last is not None else None
    rows = {}
    for sku in skus:
        category, price = stats.catalog.get(sku, UNKNOWN)
        seen = history.get(sku)
        if seen is None:
            viewed = rank = recency = count = session = 0.0
        else:
            i, v = seen
            age = max(now - v.ts, 0.0)
            viewed, rank, recency = 1.0, 1.0 / (1 + i), math.pow(0.5, age / 3600.0)
            count, session = math.log1p(v.views), 1.0 if age <= 1800.0 else 0.0
        fit = (
            1.0 / (1.0 + abs(math.log(price) - log_mean))
            if log_mean is not None and price > 0
            else 0.5
        )
        rows[sku] = {
            "viewed": viewed, "view_rank": rank, "view_recency": recency, "view_count": count,
            "in_session": session, "cooc": math.log1p(cooc.get(sku, 0.0)),
            "cooc_last": math.log1p(last_neighbours.get(sku, 0.0)),
            "category_affinity": counts.get(category, 0) / n,
            "same_category_last": 1.0 if category == last_category else 0.0,
            "price_fit": fit, "popularity": math.log1p(popularity.get(sku, 0.0)),
        }  # fmt: skip
    return rows


def shop(rng: random.Random) -> tuple[CustomerState, list[str], CandidateStats, dict, dict]:
    stats = CandidateStats()
    skus = [f"s{i}" for i in range(80)]
    for k in range(400):
        sku = rng.choice(skus)
        price = rng.choice([0.0, 1.0, 9.99, 250.0])
        recent = [(rng.choice(skus), k - 1.0)]
        stats.observe(
            sku, rng.choice(["a", "b", None]), price, ts=float(k), weight=1.0, recent=recent
        )
    views = tuple(
        View(sku, rng.choice(["a", "b", "c"]), rng.choice([0.0, 5.0, 80.0]), NOW - rng.random() * 9000, rng.randint(1, 4))
        for sku in rng.sample(skus, rng.randint(0, 20))
    )  # fmt: skip
    state = CustomerState("c", 0.0, NOW, recent_views=views)
    pool = [*rng.sample(skus, rng.randint(1, 60)), "never-seen"]
    cooc = {sku: rng.random() * 5 for sku in rng.sample(pool, len(pool) // 2)}
    popularity = {sku: rng.random() * 50 for sku in pool if rng.random() < 0.8}
    return state, pool, stats, cooc, popularity


def trained(rng: random.Random, **kwargs: object) -> OfferRanker:
    ranker = OfferRanker(**kwargs)  # type: ignore[arg-type]
    state, pool, stats, cooc, popularity = shop(rng)
    rows = reference_rows(state, pool, stats, NOW, cooc, popularity)
    for sku, x in rows.items():
        ranker.learn_one(x, rng.random() < 0.3 or sku == pool[0])
    return ranker


def test_columns_are_the_rows() -> None:
    rng = random.Random(3)
    for _ in range(200):
        state, pool, stats, cooc, popularity = shop(rng)
        expected = reference_rows(state, pool, stats, NOW, cooc, popularity)
        got = features(state, pool, stats, NOW, cooc, popularity)
        assert list(got) == list(expected)
        for sku in pool:  # repr: the same floats, -0.0 and all; and the same key order
            assert list(got[sku].items()) == list(expected[sku].items())
            assert repr(got[sku]) == repr(expected[sku])
        rows = Rows(pool, table(state, pool, stats, NOW, cooc, popularity)[0])
        assert all(rows[sku] == expected[sku] for sku in reversed(pool))
        fresh = Rows(pool, table(state, pool, stats, NOW, cooc, popularity)[0])
        for sku in pool:  # what an offer keeps of a shown item
            assert fresh.sorted_items(sku) == tuple(sorted(expected[sku].items()))


def test_rank_columns_is_rank() -> None:
    rng = random.Random(5)
    for kwargs in ({}, {"pairwise": True}, {"scaled": False}, {"exposure_blend": 0.5}):
        for _ in range(50):
            ranker = trained(rng, **kwargs)
            if kwargs.get("exposure_blend"):
                ranker.exposure.learn({"cooc": 1.0, "viewed": 1.0}, clicked=True, propensity=0.2)
            state, pool, stats, cooc, popularity = shop(rng)
            if rng.random() < 0.2:  # River's clamped sigmoid (0 and 1 beyond +-30)
                ranker.lr.intercept = rng.choice([-45.0, 45.0])
            cols, viewed = table(state, pool, stats, NOW, cooc, popularity)
            expected = ranker.rank(reference_rows(state, pool, stats, NOW, cooc, popularity))
            assert repr(ranker.rank_columns(pool, FEATURES, cols)) == repr(expected)
            got = ranker.rank_columns(pool, FEATURES, cols, lead=OWN, nonzero=viewed)
            assert repr(got) == repr(expected)


def test_rows_added() -> None:
    rows = Rows(["a"], [[0.5]], names=("cooc",))
    rows.update({"b": {"cooc": 1.0}})
    assert (
        "b" in rows and rows["b"] == {"cooc": 1.0} and list(rows) == ["a", "b"] and len(rows) == 2
    )
