"""Sharing population learners: two halves' deltas merged give what one learner on all
the data gives (exactly where the learner is a sum, within the sketch's error where not)."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamcrm.app.agents import partition_of
from streamcrm.decisions import CrmConfig
from streamcrm.events import parse_ts
from streamcrm.learning.candidates import CandidateStats
from streamcrm.learning.churn import ChurnModel
from streamcrm.learning.offer_gate import OfferGate
from streamcrm.learning.ranking import OfferRanker
from streamcrm.learning.rfm import RFMScorer
from streamcrm.learning.river_state import BadState
from streamcrm.replay.adapters import Mapped
from streamcrm.replay.runner import Workers, replay
from streamcrm.sharing.exchange import Exchange, partition_for
from streamcrm.sharing.kll import KLL
from streamcrm.sharing.learners import Peer
from streamcrm.sharing.linear import combine, subtract
from streamcrm.sharing.memory import MemoryTransport
from streamcrm.synthetic import generate

# -- the quantile sketch


def rank_error(sketch: KLL, values: list[float], q: float) -> float:
    """How far the sketch's q-quantile is from q, as a share of the stream (by rank)."""
    got = sketch.quantile(q)
    assert got is not None
    ordered = sorted(values)
    below = sum(1 for v in ordered if v < got)
    upto = sum(1 for v in ordered if v <= got)
    target = q * len(ordered)
    return (
        0.0
        if below <= target <= upto
        else min(abs(below - target), abs(upto - target)) / len(ordered)
    )


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=300), st.integers(0, 300))
def test_kll_is_exact_below_its_capacity_and_merges_halves_exactly(
    values: list[float], cut: int
) -> None:
    whole, left, right = KLL(k=400), KLL(k=400), KLL(k=400)
    for i, v in enumerate(values):
        whole.update(v)
        (left if i < cut else right).update(v)
    left.merge(right)
    for q in (0.2, 0.4, 0.6, 0.8):
        assert left.quantile(q) == whole.quantile(q)
    assert left.cuts((0.2, 0.4, 0.6, 0.8)) == [whole.quantile(q) for q in (0.2, 0.4, 0.6, 0.8)]


def test_kll_merged_halves_of_a_long_stream_stay_within_two_percent_of_rank() -> None:
    rng = random.Random(3)
    values = [rng.lognormvariate(3, 1.5) for _ in range(50_000)]
    parts = [KLL(k=200) for _ in range(8)]
    for i, v in enumerate(values):
        parts[i % 8].update(v)
    merged = KLL(k=200)
    for p in parts:
        merged.merge(KLL.from_data(orjson.loads(orjson.dumps(p.to_data()))))
    assert merged.n == len(values)
    assert sum(len(lv) for lv in merged.levels) < 1_000  # bounded, not the stream
    for q in (0.2, 0.4, 0.6, 0.8):
        assert rank_error(merged, values, q) < 0.02


@pytest.mark.parametrize(
    "bad",
    [None, [], {"k": 1, "n": 0, "levels": [[]]}, {"k": 200, "n": 2, "levels": [[1.0]]},
     {"k": 200, "n": 1, "levels": [["x"]]}, {"k": 200, "n": 1, "levels": [[float("nan")]]}],
)  # fmt: skip
def test_a_bad_sketch_record_is_rejected(bad: object) -> None:
    with pytest.raises(BadState):
        KLL.from_data(bad)


# -- RFM


def test_two_workers_rfm_after_an_exchange_score_as_one_on_all_customers() -> None:
    rng = random.Random(5)
    rows = [(rng.uniform(0, 90), float(rng.randint(1, 9)), rng.uniform(5, 900)) for _ in range(400)]
    one, a, b = RFMScorer(), RFMScorer(), RFMScorer()
    for s in (one, a, b):
        s.share(k=1_000)  # exact at this size: the merge itself is what is checked
    for i, (r, f, m) in enumerate(rows):
        one.learn_one(recency_days=r, frequency=f, monetary=m)
        (a if i % 2 else b).learn_one(recency_days=r, frequency=f, monetary=m)
    da, db = a.export_delta(), b.export_delta()
    a.merge_delta(db)
    b.merge_delta(da)
    assert a.seen == b.seen == one.seen
    for r, f, m in rows[:50]:
        x = {"recency_days": r, "frequency": f, "monetary": m}
        a._cuts_at = b._cuts_at = one._cuts_at = -1  # read the cut points now
        assert a.score_one(**x) == b.score_one(**x) == one.score_one(**x)
    assert a.export_delta() is None  # merged values are not sent on


# -- candidate statistics


def drive(stats: list[CandidateStats], events: list[tuple[int, int, float]]) -> float:
    """(customer, sku, dt) events; customer c's go to ``stats[c % len(stats)]``."""
    ts, history = 1.7e9, {}
    for customer, sku, dt in events:
        ts += dt
        recent = history.setdefault(customer, [])
        stats[customer % len(stats)].observe(
            f"s{sku}", f"c{sku % 3}", 10.0 + sku, ts=ts, weight=1.0 + sku % 3, recent=recent[-5:]
        )
        recent.append((f"s{sku}", ts))
    return ts


events_strategy = st.lists(
    st.tuples(st.integers(0, 9), st.integers(0, 30), st.sampled_from([0.0, 5.0, 600.0, 4000.0])),
    max_size=120,
)


@settings(max_examples=60, deadline=None)
@given(events_strategy)
def test_candidate_deltas_of_two_halves_merge_into_what_one_learner_has(
    events: list[tuple[int, int, float]],
) -> None:
    def fresh() -> CandidateStats:
        return CandidateStats(max_skus=1_000, max_neighbours=1_000)

    one, a, b = fresh(), fresh(), fresh()
    a.share()
    b.share()
    now = drive([one], events)
    drive([a, b], events)
    da = orjson.loads(orjson.dumps(a.export_delta()))
    db = orjson.loads(orjson.dumps(b.export_delta()))
    a.merge_delta(db)
    b.merge_delta(da)
    for side in (a, b):
        assert set(side.popularity) == set(one.popularity)
        got, want = side.popularity_at(one.popularity, now), one.popularity_at(one.popularity, now)
        assert all(math.isclose(got[k], want[k], rel_tol=1e-9) for k in want)
        assert side.counts == one.counts
        assert side.top_counts(10) == one.top_counts(10)
        for sku, neighbours in one.cooc.items():
            assert side.cooc.get(sku) == pytest.approx(neighbours)
        assert set(side.catalog) == set(one.catalog)


def test_a_candidate_delta_holds_at_most_the_tracked_sku_cap() -> None:
    stats = CandidateStats(max_skus=20)
    stats.share()
    drive([stats], [(c, sku, 1.0) for c in range(5) for sku in range(60)])
    delta = stats.export_delta()
    assert delta is not None
    assert len(delta["items"]) == 20 and delta["dropped"] > 0
    assert stats.export_delta() is None  # nothing new since


def test_a_bad_candidate_delta_is_rejected() -> None:
    stats = CandidateStats()
    for bad in ({"events": 1, "items": [["s1", "high", 0, 1, None, None, []]]},
                {"events": -1, "items": []}, {"events": 1, "items": [["s1"]]}, "x"):  # fmt: skip
        with pytest.raises(BadState):
            stats.merge_delta(bad)
    assert stats.popularity == {}


def test_a_candidate_delta_sends_each_link_once_and_the_receiver_links_back() -> None:
    sender, receiver = CandidateStats(), CandidateStats()
    sender.share()
    sender.observe("a", "c", 5.0, ts=0.0, weight=1.0, recent=[])
    sender.observe("b", "c", 6.0, ts=10.0, weight=2.0, recent=[("a", 0.0)])
    delta = orjson.loads(orjson.dumps(sender.export_delta()))
    by_sku = {item[0]: item[6] for item in delta["items"]}
    assert by_sku == {"a": [], "b": ["a", 2.0]}  # forward only, one flat list
    receiver.merge_delta(delta)
    assert receiver.cooc == sender.cooc == {"b": {"a": 2.0}, "a": {"b": 2.0}}


def test_the_reverse_link_is_made_only_onto_a_neighbour_the_receiver_tracks() -> None:
    receiver = CandidateStats()
    receiver.merge_delta({"events": 1, "dropped": 0,
                          "items": [["b", 1.0, 10.0, 1.0, None, None, ["gone", 1.0]]]})  # fmt: skip
    assert receiver.cooc == {"b": {"gone": 1.0}}  # no list for the untracked "gone"


def test_a_version_1_or_malformed_candidate_delta_is_rejected_with_a_reason() -> None:
    stats = CandidateStats()
    item = ["s1", 1.0, 0.0, 1.0, None, None]
    for links, reason in (([["s2", 1.0]], "flat"), (["s2"], "flat"), (["s2", "x"], "flat"),
                          ([1.0, "s2"], "flat"), (["s2", float("inf")], "flat")):  # fmt: skip
        with pytest.raises(BadState, match=reason):
            stats.merge_delta({"events": 1, "items": [[*item, links]]})
    with pytest.raises(BadState, match="malformed"):  # v1's score-less neighbour-only row
        stats.merge_delta({"events": 1, "items": [["s1", None, 0.0, 0.0, None, None, []]]})
    assert stats.popularity == {} and stats.cooc == {}
    with pytest.raises(BadState, match="version-2"):
        Peer("b").merge(None, {"v": 1, "worker": "a", "seq": 1})  # type: ignore[arg-type]


# -- models: after an exchange every worker has the same model, with every worker's steps


def labelled(rng: random.Random, n: int) -> list[tuple[dict[str, float], bool]]:
    out = []
    for _ in range(n):
        x = {"cooc": rng.random(), "recent": rng.random() * 3, "price_ratio": rng.gauss(1, 0.3)}
        out.append((x, x["cooc"] + 0.3 * x["recent"] + rng.gauss(0, 0.3) > 0.9))
    return out


def test_rankers_after_an_exchange_are_one_model_with_both_workers_steps() -> None:
    rng = random.Random(11)
    a, b = OfferRanker(), OfferRanker()
    for round_ in range(3):
        for x, y in labelled(rng, 40):
            a.learn_one(x, y)
        for x, y in labelled(rng, 25 + round_):
            b.learn_one(x, y)
        da, db = a.export_delta(), b.export_delta()
        a.merge_delta(orjson.loads(orjson.dumps(db)))
        b.merge_delta(orjson.loads(orjson.dumps(da)))
        assert a.weights() == b.weights()
        assert a.lr.intercept == pytest.approx(b.lr.intercept)
        assert a.labels == b.labels
        for k in a.scaler.counts:
            assert a.scaler.counts[k] == b.scaler.counts[k]
            assert a.scaler.means[k] == pytest.approx(b.scaler.means[k])
            assert a.scaler.vars[k] == pytest.approx(b.scaler.vars[k])
    candidates = {f"s{i}": x for i, (x, _) in enumerate(labelled(rng, 10))}
    assert [s for s, _ in a.rank(candidates)] == [s for s, _ in b.rank(candidates)]


def test_the_shared_scaler_is_the_scaler_of_all_the_data() -> None:
    rng = random.Random(2)
    one, a, b = ChurnModel(), ChurnModel(), ChurnModel()
    for i, (x, y) in enumerate(labelled(rng, 200)):
        one.learn_one(x, ordered_again=y)
        (a if i % 3 else b).learn_one(x, ordered_again=y)
    a.merge_delta(b.export_delta())
    mine, all_ = a.model["StandardScaler"], one.model["StandardScaler"]
    for k in all_.counts:
        assert mine.counts[k] == all_.counts[k]
        assert mine.means[k] == pytest.approx(all_.means[k])
        assert mine.vars[k] == pytest.approx(all_.vars[k])
    assert a.labels == len(range(200)) - len(range(0, 200, 3))  # its own labels only


@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=50),
       st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=50))  # fmt: skip
def test_mean_and_variance_combine_and_subtract(xs: list[float], ys: list[float]) -> None:
    def stats(v: list[float]) -> tuple[int, float, float]:
        m = sum(v) / len(v)
        return len(v), m, sum((x - m) ** 2 for x in v)

    n, m, s = combine(stats(xs), stats(ys))
    want = stats(xs + ys)
    assert n == want[0] and m == pytest.approx(want[1], abs=1e-6)
    assert s == pytest.approx(want[2], rel=1e-6, abs=1e-3)
    back = subtract((n, m, s), stats(xs))
    assert back[0] == len(ys) and back[1] == pytest.approx(stats(ys)[1], abs=1e-6)


def test_the_gate_folds_in_another_workers_moments() -> None:
    one, a, b = OfferGate(warmup=4), OfferGate(warmup=4), OfferGate(warmup=4)
    moments = [(True, False)] * 6 + [(False, True)] * 2
    for i, (m, f) in enumerate(moments):
        one.update(model_hit=m, fallback_hit=f)
        (a if i % 2 else b).update(model_hit=m, fallback_hit=f)
    a.merge_delta(b.export_delta())
    assert (a.examples, a.model_hits, a.fallback_hits) == (8, 6, 2)
    assert a.use_model == one.use_model is True


# -- the exchange


def test_a_peer_skips_its_own_and_repeated_deltas_and_rejects_strangers() -> None:
    class Set:
        def __init__(self) -> None:
            self.rfm, self.candidates, self.ranker = RFMScorer(), CandidateStats(), OfferRanker()
            self.churn, self.gate = ChurnModel(), OfferGate()

    a, b = Set(), Set()
    pa, pb = Peer("a"), Peer("b")
    a.candidates.share()
    a.candidates.observe("s1", "c", 5.0, ts=1.0, weight=1.0, recent=[])
    delta = pa.export(a)
    assert delta is not None and pa.export(a) is None  # nothing new
    assert pa.merge(a, delta) is False  # its own
    assert pb.merge(b, delta) is True and pb.merge(b, delta) is False  # once only
    assert b.candidates.counts == {"s1": 1.0}
    with pytest.raises(BadState):
        pb.merge(b, {"v": 99})


def test_a_delta_reaches_the_other_worker_after_the_stated_delay() -> None:
    sets = [CandidateStats(), CandidateStats()]

    class Set:
        def __init__(self, candidates: CandidateStats) -> None:
            self.rfm, self.candidates, self.ranker = RFMScorer(), candidates, OfferRanker()
            self.churn, self.gate = ChurnModel(), OfferGate()

    learners = [Set(c) for c in sets]
    exchange = Exchange.between(learners, MemoryTransport(delay_s=30.0), every_s=60.0)
    exchange.tick(learners, 0.0)
    sets[0].observe("s1", "c", 5.0, ts=10.0, weight=1.0, recent=[])
    exchange.saw(0, 10.0)
    exchange.tick(learners, 60.0)  # published now, arrives at 90
    assert "s1" not in sets[1].popularity
    exchange.tick(learners, 89.0)
    assert "s1" not in sets[1].popularity
    exchange.tick(learners, 90.0)
    assert "s1" in sets[1].popularity
    summary = exchange.summary(events=1)
    assert summary["interaction_to_peers_delay_s"] == {"mean": 80.0, "max": 80.0}
    assert summary["deltas_published"] == 1 and summary["delta_bytes"] > 0


@given(st.text(min_size=1, max_size=30))
def test_replay_partitions_customers_as_the_worker_does(customer: str) -> None:
    assert partition_for(customer.encode(), 8) == partition_of(customer, 8)


def test_exchanging_after_every_example_is_exactly_one_learner() -> None:
    """Summed deltas are one model taking every worker's SGD steps: with no staleness
    (an exchange after each example) they are the single learner, step for step."""
    rng = random.Random(4)
    one, a, b = OfferRanker(scaled=False), OfferRanker(scaled=False), OfferRanker(scaled=False)
    for i, (x, y) in enumerate(labelled(rng, 60)):
        one.learn_one(x, y)
        mine, other = (a, b) if i % 2 else (b, a)
        mine.learn_one(x, y)
        other.merge_delta(mine.export_delta())
    assert a.weights() == pytest.approx(one.weights(), abs=1e-9)
    assert b.weights() == pytest.approx(one.weights(), abs=1e-9)
    assert a.lr.intercept == pytest.approx(one.lr.intercept)


# -- the simulated cluster


def synthetic_log(events: int = 3_000) -> list[Mapped]:
    out = []
    for r in generate(events, seed=3, customers=300, skus=200):
        ts = parse_ts(orjson.loads(r.value)["ts"])
        out.append(Mapped(ts, r.topic_kind, r.key, r.value))
    return out


def test_one_simulated_worker_is_the_plain_replay_and_workers_split_the_same_events() -> None:
    log = synthetic_log()
    plain = replay(log, crm=CrmConfig()).summary()
    one = replay(log, crm=CrmConfig(), workers=Workers(1)).summary()
    assert one == plain
    assert plain["cluster"] == {"workers": 1, "partitions": 8, "sharing": None}
    shared = replay(log, crm=CrmConfig(), workers=Workers(4, 8, 60.0)).summary()
    alone = replay(log, crm=CrmConfig(), workers=Workers(4, 8)).summary()
    for summary in (shared, alone):
        assert (summary["events"], summary["customers"]) == (plain["events"], plain["customers"])
        assert summary["offers_evaluated"] == plain["offers_evaluated"]  # the same moments
    sharing = shared["cluster"]["sharing"]
    assert sharing["deltas_published"] > 0 and sharing["deltas_rejected"] == 0

    # RFM: shared, the workers score against one population (as one worker scoring
    # against the same sketch); alone, each against its quarter.
    one_sketch = replay(log, crm=CrmConfig(), workers=Workers(1, 8, 60.0)).summary()

    def gap(summary: dict[str, Any]) -> float:
        a, b = summary["segment_shares"], one_sketch["segment_shares"]
        return max(abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in {*a, *b})

    assert gap(shared) <= 0.01 < gap(alone)


def test_replay_refuses_more_workers_than_partitions(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    log.write_text("1,2,3,pv,1511658000\n")
    run = subprocess.run(
        [sys.executable, "-m", "streamcrm", "replay", str(log), "--format", "taobao",
         "--workers", "9"], capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode != 0
    assert "--workers 9: give 1 to --partitions (8) workers" in run.stderr
    assert "Traceback" not in run.stderr
