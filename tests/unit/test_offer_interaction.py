"""The offer_interaction input: decoded and validated on the browse topic (bad ones are
dead-lettered with a reason), learned by the exposure model with inverse-propensity
weights, apart from the organic choices the ranker learns from."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamcrm.events import SCHEMA_VIOLATION, WRONG_TOPIC, InvalidEvent, decode, format_ts
from streamcrm.ingest import BatchResult
from streamcrm.learning.ranking import MAX_IPS_WEIGHT, ExposureModel, OfferRanker
from tests.unit.test_next_best_offer import T0, TOPIC, teach_pairs
from tests.unit.test_next_best_offer import Shop as OfferShop

TOPIC.setdefault("offer_interaction", "b")  # the browse topic


class Shop(OfferShop):
    def __init__(self) -> None:
        super().__init__()
        self.dead: list[str] = []

    def _take(self, result: BatchResult) -> None:
        super()._take(result)
        self.dead += [d["reason"] for _, d in result.dead_letters]


def interaction(offer: dict[str, Any], action: str, slot: int = 0, **over: Any) -> dict[str, Any]:
    item = offer["items"][slot]
    body = {"action": action, "offer_id": offer["offer_id"], "sku": item["sku"],
            "position": item["rank"], "propensity": item["propensity"]}  # fmt: skip
    return {**body, **over}


def raw(**body: Any) -> bytes:
    event = {"event_id": "i1", "type": "offer_interaction", "customer_id": "c1",
             "ts": format_ts(T0), "channel": "web", "action": "clicked", "offer_id": "nbo-1",
             "sku": "a", "position": 1, "propensity": 0.5, **body}  # fmt: skip
    return orjson.dumps({k: v for k, v in event.items() if v is not None})


def test_an_interaction_decodes_on_the_browse_topic_only() -> None:
    event = decode(raw(), topic_kind="browse", key=b"c1")
    assert (event.type, event.body["action"], event.body["propensity"]) == (
        "offer_interaction",
        "clicked",
        0.5,
    )
    with pytest.raises(InvalidEvent) as wrong:
        decode(raw(), topic_kind="cart", key=b"c1")
    assert wrong.value.reason == WRONG_TOPIC


@pytest.mark.parametrize(
    "bad",
    [{"action": "liked"}, {"propensity": 0}, {"propensity": 1.5}, {"propensity": None},
     {"position": 0}, {"offer_id": ""}, {"sku": None}, {"position": "1"}],
)  # fmt: skip
def test_a_bad_interaction_is_a_schema_violation(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent) as err:
        decode(raw(**bad), topic_kind="browse", key=b"c1")
    assert err.value.reason == SCHEMA_VIOLATION


def test_a_bad_interaction_is_dead_lettered_and_the_stream_goes_on() -> None:
    shop = Shop()
    shop.send("c1", "offer_interaction", T0, action="clicked", offer_id="x", sku="a", position=1,
              propensity=0.0)  # fmt: skip
    shop.view("c1", "a", T0 + 1)
    assert shop.dead == [SCHEMA_VIOLATION] and shop.offers  # the view after it was decided


def test_clicks_and_dismissals_teach_the_exposure_model_not_the_ranker() -> None:
    shop = Shop()
    teach_pairs(shop)
    ranker = shop.processor.learners.ranker
    shop.view("c1", "a", T0 + 100)
    offer = shop.offers[-1]
    labels, weights = ranker.labels, ranker.weights()
    shop.send("c1", "offer_interaction", T0 + 101, **interaction(offer, "shown"))
    assert ranker.exposure.labels == 0 and ranker.exposure.shown == 1  # counted, not learned
    shop.send("c1", "offer_interaction", T0 + 102, **interaction(offer, "clicked"))
    shop.send("c1", "offer_interaction", T0 + 103, **interaction(offer, "dismissed", slot=1))
    exposure = ranker.exposure
    assert (exposure.labels, exposure.clicks) == (2, 1)
    propensities = [offer["items"][i]["propensity"] for i in (0, 1)]
    assert exposure.weighted == pytest.approx(sum(min(1 / p, MAX_IPS_WEIGHT) for p in propensities))
    assert exposure.summary()["weights"]  # learned on the features the items were offered with
    assert (ranker.labels, ranker.weights()) == (labels, weights)  # organic model untouched
    counted = [o for o in shop.outcomes if o.startswith("interaction_")]
    assert counted == ["interaction_shown", "interaction_clicked", "interaction_dismissed"]


def test_interactions_that_cannot_be_matched_teach_nothing() -> None:
    shop = Shop()
    teach_pairs(shop)
    shop.view("c1", "a", T0 + 100)
    offer = shop.offers[-1]
    shop.send(
        "c1", "offer_interaction", T0 + 101, **interaction(offer, "clicked", offer_id="nbo-old")
    )
    shop.send(
        "c1", "offer_interaction", T0 + 102, **interaction(offer, "clicked", sku="never-shown")
    )
    shop.send(
        "c2", "offer_interaction", T0 + 103, **interaction(offer, "clicked")
    )  # not c2's offer
    shop.view("zz", "x", T0 + 100 + 86_400 + 1)  # the reward window closes: features dropped
    shop.send("c1", "offer_interaction", T0 + 86_600, **interaction(offer, "clicked"))
    assert shop.processor.learners.ranker.exposure.labels == 0
    counted = [o for o in shop.outcomes if o.startswith("interaction_")]
    assert counted == ["interaction_unknown_offer", "interaction_unknown_sku",
                       "interaction_unknown_offer", "interaction_offer_closed"]  # fmt: skip


def test_the_inverse_propensity_weight_scales_the_step() -> None:
    x = {"cooc": 1.0, "viewed": 0.0}
    rare, common = ExposureModel(), ExposureModel()
    for m in (rare, common):  # the same two examples first (a scaler with variance)
        m.learn({"cooc": 0.0, "viewed": 1.0}, clicked=False, propensity=1.0)
    rare.learn(x, clicked=True, propensity=0.05)
    common.learn(x, clicked=True, propensity=0.9)
    assert rare.logit(x) > common.logit(x) > 0 > ExposureModel().logit(x) - 1


@settings(max_examples=50, deadline=None)
@given(st.floats(min_value=1e-9, max_value=1.0))
def test_weights_are_capped_for_any_propensity(p: float) -> None:
    m = ExposureModel()
    m.learn({"cooc": 1.0}, clicked=True, propensity=p)
    assert 1.0 <= m.weighted <= MAX_IPS_WEIGHT


def test_blend_is_off_by_default_and_moves_scores_when_on() -> None:
    rows = {"a": {"cooc": 1.0, "viewed": 0.0}, "b": {"cooc": 0.0, "viewed": 1.0}}
    plain, blended = OfferRanker(epsilon=0.0), OfferRanker(epsilon=0.0, exposure_blend=1.0)
    for r in (plain, blended):
        for _ in range(20):
            r.exposure.learn(rows["a"], clicked=True, propensity=0.5)
            r.exposure.learn(rows["b"], clicked=False, propensity=0.5)
    assert [s for s, _ in plain.rank(rows)] == ["a", "b"]  # ties keep the candidates' order
    assert dict(plain.rank(rows))["a"] == dict(plain.rank(rows))["b"]
    assert dict(blended.rank(rows))["a"] > dict(blended.rank(rows))["b"]


def test_the_exposure_model_survives_a_checkpoint() -> None:
    from streamcrm.decisions import Learners
    from streamcrm.learning.checkpoint import dump_model, load

    learners = Learners()
    learners.ranker.exposure.learn({"cooc": 1.0}, clicked=True, propensity=0.25)
    learners.ranker.exposure.learn({"cooc": 0.0}, clicked=False, propensity=0.5)
    learners.ranker.exposure.shown = 3
    restored, _ = load(dump_model(learners), [], like=Learners())
    assert restored.ranker.exposure.summary() == learners.ranker.exposure.summary()
    x = {"cooc": 0.7}
    assert restored.ranker.exposure.logit(x) == learners.ranker.exposure.logit(x)
    assert restored.ranker.labels == learners.ranker.labels == 0  # the organic model apart
