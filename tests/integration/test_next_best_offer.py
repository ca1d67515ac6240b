"""Next-best-offer through a real worker: offers out, a cart add in, the model learns, Redis
serves the offer, and learning survives a killed worker."""

from __future__ import annotations

import time

import orjson
import redis

from streamcrm.publish import publish
from streamcrm.snapshot import snapshot_key

from .conftest import Deployment, consume
from .offer_worker import T0, cart, start, teaching, view


async def test_offers_rewards_learning_serving_and_restart(
    deployment: Deployment, redis_client: redis.Redis
) -> None:
    worker, settings = start(deployment)
    # Shoppers who look at a then b teach the stream that b goes with a; one of them puts
    # b in the cart: a choice among its candidates, which the ranker learns.
    taught = [*teaching(20), cart("t0", "b", T0 + 30)]
    # Then a customer looks at a (an offer), at an offered item (a reward, not a label),
    # and a day passes in event time (the reward window closes).
    journey = [
        view("c-nbo", "a", T0 + 100),
        view("c-nbo", "b", T0 + 160),
        view("zz", "x", T0 + 2 * 86_400),
    ]
    await publish(settings, taught + journey, end_of_stream=True)
    stats = worker.wait_for(
        lambda s: s["events_in"] == 44 and s["buffered"] == 0, what="log applied"
    )
    offers = await consume(
        deployment.bootstrap,
        deployment.topics.offers,
        expected=stats["offers_emitted"],
        timeout=30,
        settle=1,
    )
    mine = [orjson.loads(m.value) for m in offers if m.key == b"c-nbo"]
    assert len(mine) == 1  # the second view came within the throttle window
    shown = [item["sku"] for item in mine[0]["items"]]
    # The gate serves the fallback order until the model has proven itself on offers.
    assert "b" in shown and mine[0]["model_version"] == "rule-recent-cooc-v1"
    assert stats["ranker_labels"] > 0  # the cart add was learned
    assert stats["ranker_version"] == f"ranker-v2.{stats['ranker_labels']}"
    worker.wait_for(lambda s: s["snapshot"]["pending"] == 0, what="snapshot flushed")
    snap = redis_client.hgetall(snapshot_key("c-nbo"))
    assert snap["offer_id"] == mine[0]["offer_id"] and orjson.loads(snap["offers"]) == shown

    learned = stats["ranker_labels"]
    time.sleep(2.5)  # checkpoints are written every second (--checkpoint-every 1s)
    worker.kill()
    restarted, _ = start(deployment, "w2")
    again = restarted.wait_for(
        lambda s: s["ranker_labels"] >= learned, timeout=90, what="learners restored"
    )
    assert again["ranker_version"] == f"ranker-v2.{again['ranker_labels']}"
