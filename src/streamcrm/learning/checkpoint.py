"""Learner checkpoints as data: one model record, one record per tracked SKU. Pure.

Workers checkpoint their learners (RFM quantiles, churn model, offer ranker, candidate
statistics, coupon uplift) into a changelog-backed table under each partition they own; a worker that
restarts or takes a partition over adopts the most advanced checkpoint it finds, so
learning continues instead of starting over.

- **Layout.** Under partition ``p``: ``p/model`` holds everything but the SKUs (River
  models' parameters, counters, the cached top lists; tens of KB whatever the
  catalogue); ``p/sku/<sku>`` holds one SKU's popularity, catalogue entry and neighbours
  (~100-700 bytes), or a tombstone once it is no longer tracked. A checkpoint writes the
  model record and only the SKUs that changed since the last one, so its cost follows
  the traffic, not the catalogue; a partition the worker has not written yet gets all.
- **Plain JSON.** Numbers, strings and lists, nothing that runs: each record is checked
  field by field on the way in and rejected (``BadState``) if it is not what this code
  writes. A rejected SKU is left out; a rejected model record rejects that checkpoint.

>>> from streamcrm.decisions import Learners
>>> learners = Learners()
>>> learners.ranker.learn_one({"bias": 1.0}, True)
>>> learners.candidates.observe("a", "shoes", 9.5, ts=0.0, weight=1.0, recent=[])
>>> model = dump_model(learners)
>>> items = [(sku, dump_item(learners.candidates, sku)) for sku in learners.candidates.popularity]
>>> restored, rejected = load(model, items, like=Learners())
>>> progress(restored), restored.ranker.version, dict(restored.candidates.catalog), rejected
(2, 'ranker-v2.1', {'a': ('shoes', 9.5)}, 0)
>>> load(b'{"v": 3, "ranker": "__import__(os)"}', [], like=Learners())
Traceback (most recent call last):
...
streamcrm.learning.river_state.BadState: ranker: expected an object
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson

from streamcrm.learning.candidates import CandidateStats
from streamcrm.learning.churn import ChurnModel
from streamcrm.learning.offer_gate import OfferGate
from streamcrm.learning.ranking import OfferRanker
from streamcrm.learning.rfm import RFMScorer
from streamcrm.learning.river_state import (
    BadState,
    glm,
    integer,
    number,
    pairs,
    quantile,
    roc_auc,
    scaler,
    set_glm,
    set_quantile,
    set_roc_auc,
    set_scaler,
    text,
)
from streamcrm.learning.uplift import TwoModelUplift

if TYPE_CHECKING:
    from streamcrm.decisions import Learners

VERSION = 3  # 3: the ranker's scaler and gate; SKU records with exact counts
MODEL = "model"
SKU = "sku/"


def dump_model(learners: Learners) -> bytes:
    churn, rfm = learners.churn, learners.rfm
    # The coupon uplift learner, once taught (coupon.targeting = "uplift"): absent before,
    # so a record of a shop that never turned it on is as it was.
    uplift = {"uplift": learners.uplift.as_dict()} if sum(learners.uplift.seen.values()) else {}
    return orjson.dumps({
        "v": VERSION,
        "progress": progress(learners),
        "ranker": _ranker(learners),
        "churn": {
            "labels": churn.labels, "positives": churn.positives, "auc": roc_auc(churn.auc),
            "scaler": scaler(churn.model.steps["StandardScaler"]),
            "glm": glm(churn.model.steps["LogisticRegression"]),
        },
        "rfm": {"seen": rfm.seen, "cuts": {d: [quantile(q) for q in qs] for d, qs in rfm._cuts.items()}},
        "candidates": learners.candidates.scalars(),
        **uplift,
    })  # fmt: skip


def _ranker(learners: Learners) -> dict[str, Any]:
    ranker = learners.ranker
    out: dict[str, Any] = {
        "labels": ranker.labels,
        "glm": glm(ranker.lr),
        "gate": learners.gate.as_dict(),
    }
    if ranker.scaler is not None:
        out["scaler"] = scaler(ranker.scaler)
    e = ranker.exposure
    if e.labels or e.shown:  # the offer-interaction model (absent: nothing reported yet)
        out["exposure"] = {
            "labels": e.labels, "clicks": e.clicks, "shown": e.shown, "weighted": e.weighted,
            "glm": glm(e.lr), "scaler": scaler(e.scaler),
        }  # fmt: skip
    return out


def dump_item(stats: CandidateStats, sku: str) -> bytes | None:
    """The SKU's record, or None (a tombstone) if it is no longer tracked."""
    item = stats.item(sku)
    return None if item is None else orjson.dumps(item)


def load(
    model: bytes, items: Iterable[tuple[str, bytes]], *, like: Learners
) -> tuple[Learners, int]:
    """New learners configured as ``like``, holding the checkpoint; and how many SKU
    records were rejected. Raises :class:`BadState` if the model record is."""
    from streamcrm.decisions import Learners

    data = _json(model)
    if not isinstance(data, dict) or data.get("v") != VERSION:
        raise BadState(f"not a learners-v{VERSION} model record")
    learners = Learners(
        rfm=RFMScorer(min_customers=like.rfm.min_customers),
        churn=ChurnModel(horizon_s=like.churn.horizon_s),
        candidates=_like(like.candidates),
        ranker=OfferRanker(
            epsilon=like.ranker.epsilon, scaled=like.ranker.scaled, pairwise=like.ranker.pairwise,
            exposure_blend=like.ranker.exposure_blend,
        ),
        gate=OfferGate(fading=like.gate.fading, warmup=like.gate.warmup, k=like.gate.k),
        anomaly=like.anomaly,  # not checkpointed: the process's own detector carries on
        uplift=TwoModelUplift(
            learning_rate=like.uplift.learning_rate, decay_after=like.uplift.decay_after
        ),
    )
    if "uplift" in data:
        learners.uplift.restore(data["uplift"])
    _load_ranker(learners.ranker, learners.gate, _object(data, "ranker"))
    _load_churn(learners.churn, _object(data, "churn"))
    _load_rfm(learners.rfm, _object(data, "rfm"))
    _load_scalars(learners.candidates, _object(data, "candidates"))
    rejected = 0
    for sku, blob in items:
        try:
            learners.candidates.restore_item(text(sku, "sku"), _item(_json(blob)))
        except BadState:
            rejected += 1
    return learners, rejected


def progress(learners: Learners) -> int:
    """Labels and observations learned so far: the larger, the further along."""
    return (
        learners.ranker.labels
        + learners.churn.labels
        + learners.candidates.updates
        + learners.rfm.seen
        + sum(learners.uplift.seen.values())
    )


def model_progress(model: bytes) -> int:
    """The progress a model record claims (to choose one before loading it)."""
    data = _json(model)
    if not isinstance(data, dict) or data.get("v") != VERSION:
        raise BadState(f"not a learners-v{VERSION} model record")
    return integer(data.get("progress"), "progress")


def _json(blob: Any) -> Any:
    if not isinstance(blob, bytes | bytearray | memoryview | str):
        raise BadState("expected JSON bytes")
    try:
        return orjson.loads(blob)
    except orjson.JSONDecodeError as exc:
        raise BadState(f"not JSON: {exc}") from None


def _object(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    if not isinstance(value, dict):
        raise BadState(f"{name}: expected an object")
    return value


def _like(stats: CandidateStats) -> CandidateStats:
    return CandidateStats(
        half_life_s=stats.half_life_s, session_s=stats.session_s, max_skus=stats.max_skus,
        max_neighbours=stats.max_neighbours, refresh_every=stats.refresh_every,
    )  # fmt: skip


def _load_ranker(ranker: OfferRanker, gate: OfferGate, data: dict[str, Any]) -> None:
    ranker.labels = integer(data.get("labels"), "ranker labels")
    set_glm(ranker.lr, data.get("glm"))
    if ranker.scaler is not None:
        set_scaler(ranker.scaler, data.get("scaler"))
    if "exposure" in data:
        e, x = ranker.exposure, _object(data, "exposure")
        e.labels = integer(x.get("labels"), "exposure labels")
        e.clicks = integer(x.get("clicks"), "exposure clicks")
        e.shown = integer(x.get("shown"), "exposure shown")
        e.weighted = number(x.get("weighted"), "exposure weighted")
        set_glm(e.lr, x.get("glm"))
        set_scaler(e.scaler, x.get("scaler"))
    g = _object(data, "gate")
    gate.examples = integer(g.get("examples"), "gate examples")
    gate.model_hits = integer(g.get("model_hits"), "gate model hits")
    gate.fallback_hits = integer(g.get("fallback_hits"), "gate fallback hits")
    gate.model_rate = number(g.get("model_rate"), "gate model rate")
    gate.fallback_rate = number(g.get("fallback_rate"), "gate fallback rate")
    gate.rebuy.restore(g.get("rebuy"))


def _load_churn(churn: ChurnModel, data: dict[str, Any]) -> None:
    churn.labels = integer(data.get("labels"), "churn labels")
    churn.positives = integer(data.get("positives"), "churn positives")
    set_roc_auc(churn.auc, data.get("auc"))
    set_scaler(churn.model.steps["StandardScaler"], data.get("scaler"))
    set_glm(churn.model.steps["LogisticRegression"], data.get("glm"))


def _load_rfm(rfm: RFMScorer, data: dict[str, Any]) -> None:
    rfm.seen = integer(data.get("seen"), "rfm seen")
    cuts = _object(data, "cuts")
    for dim, quantiles in rfm._cuts.items():
        states = cuts.get(dim)
        if not isinstance(states, list) or len(states) != len(quantiles):
            raise BadState(f"rfm {dim}: expected {len(quantiles)} quantiles")
        for q, state in zip(quantiles, states, strict=True):
            set_quantile(q, state)


def _load_scalars(stats: CandidateStats, data: dict[str, Any]) -> None:
    origin = data.get("origin")
    top_by_category = _object(data, "top_by_category")
    stats.restore_scalars(
        None if origin is None else number(origin, "origin"),
        integer(data.get("seq"), "seq"),
        integer(data.get("updates"), "updates"),
        _int_or_minus_one(data.get("refreshed_at")),
        [(text(sku, "sku"), number(score, "score"))
         for sku, score in (_two(p) for p in pairs(data.get("top"), "top"))],
        {text(c, "category"): [text(s, "sku") for s in pairs_of_text(v)]
         for c, v in top_by_category.items()},
    )  # fmt: skip


def _int_or_minus_one(value: Any) -> int:
    return -1 if value == -1 else integer(value, "refreshed_at")


def pairs_of_text(value: Any) -> list[Any]:
    if not isinstance(value, list) or len(value) > 10_000:
        raise BadState("expected a list of SKUs")
    return value


def _item(
    data: Any,
) -> tuple[float, float, int, str | None, float | None, dict[str, float], float]:
    # Records written before the exact counts existed have 6 entries (count 0: it restarts).
    if not isinstance(data, list) or len(data) not in (6, 7):
        raise BadState("SKU record: expected [score, at, seq, category, price, neighbours, count]")
    score, at, seq, category, price, neighbours = data[:6]
    count = number(data[6], "count") if len(data) == 7 else 0.0
    if number(score, "score") <= 0:
        raise BadState("SKU record: score must be positive")
    if category is not None and price is None:
        raise BadState("SKU record: a catalogue entry has a price")
    return (
        float(score), number(at, "at"), integer(seq, "seq"),
        None if category is None else text(category, "category"),
        None if price is None else number(price, "price"),
        {text(k, "neighbour"): number(w, "weight")
         for k, w in (_two(p) for p in pairs(neighbours, "neighbours", 1000))},
        count,
    )  # fmt: skip


def _two(pair: list[Any]) -> tuple[Any, Any]:
    if len(pair) != 2:
        raise BadState("expected [name, value] pairs")
    return pair[0], pair[1]
