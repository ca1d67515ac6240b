"""offer_interaction through a real worker: an offer goes out, the storefront reports a
click and a malformed interaction on the browse topic; the click teaches the exposure
model (not the organic ranker), the malformed one is dead-lettered with its reason."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from streamcrm.events import format_ts
from streamcrm.publish import publish

from .conftest import Deployment, consume
from .offer_worker import T0, start, teaching, view


def interaction(customer: str, ts: float, **body: Any) -> tuple[str, bytes, bytes]:
    event = {"event_id": str(uuid.uuid4()), "type": "offer_interaction", "customer_id": customer,
             "ts": format_ts(ts), "channel": "web", **body}  # fmt: skip
    return "browse", customer.encode(), orjson.dumps(event)


async def test_a_click_teaches_the_exposure_model_and_a_bad_one_is_dead_lettered(
    deployment: Deployment,
) -> None:
    worker, settings = start(deployment)
    await publish(settings, [*teaching(10), view("c-int", "a", T0 + 100)], end_of_stream=True)
    stats = worker.wait_for(lambda s: s["events_in"] == 21 and s["buffered"] == 0, what="applied")
    offers = await consume(
        deployment.bootstrap, deployment.topics.offers, expected=stats["offers_emitted"]
    )
    offer = next(orjson.loads(m.value) for m in offers if m.key == b"c-int")
    item = offer["items"][0]
    click = {"action": "clicked", "offer_id": offer["offer_id"], "sku": item["sku"],
             "position": item["rank"], "propensity": item["propensity"]}  # fmt: skip
    labels = stats["ranker_labels"]
    await publish(
        settings,
        [
            interaction("c-int", T0 + 110, **click),
            interaction("c-int", T0 + 111, **{**click, "propensity": 0}),  # not a probability
        ],
        end_of_stream=True,
    )
    after = worker.wait_for(lambda s: s["events_in"] == 23 and s["buffered"] == 0, what="applied")
    assert after["dead_letters_by_reason"] == {"schema_violation": 1}
    assert (after["exposure"]["labels"], after["exposure"]["clicks"]) == (1, 1)
    assert after["exposure"]["weighted"] == round(1 / item["propensity"], 4)
    assert after["ranker_labels"] == labels  # the organic ranker learned nothing from it
    dead = await consume(deployment.bootstrap, deployment.topics.deadletter, expected=1)
    letter = orjson.loads(dead[0].value)
    assert letter["reason"] == "schema_violation" and "propensity" in letter["detail"]
    assert letter["source"]["topic"] == deployment.topic_of("browse")
