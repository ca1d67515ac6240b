"""The offers' exposure log: offers (``next_best_offer`` with ``exposure``) joined with their
rewards (``offer_reward``) by offer id, as a replay's ``--decisions-out`` file holds them.

An offer's reward window is closed when it has a reward, when a newer offer for the same
customer replaced it, or when its ``expires_at`` is not after the last time in the log; a
closed offer without a reward had reward 0 in every slot. Offers still open at the end of
the log are left out (counted). Win-back offers carry no exposure and are not read.

>>> lines = [
...     '{"type": "next_best_offer", "offer_id": "o1", "customer_id": "c", '
...     '"ts": "2026-11-01T08:00:00Z", "expires_at": "2026-11-02T08:00:00Z", '
...     '"items": [{"sku": "b", "rank": 1, "propensity": 0.9}], "exposure": '
...     '{"policy": "slot-epsilon-v1", "exploration": [0.1], "features": ["f"], "pool": '
...     '[{"sku": "a", "score": 0.9, "model": 0.9, "x": [1.0]}, '
...     '{"sku": "b", "score": 0.5, "model": 0.5, "x": [0.0]}]}}',
...     '{"type": "offer_reward", "offer_id": "o1", "customer_id": "c", '
...     '"ts": "2026-11-01T08:05:00Z", "trigger": "cart_item_added", "skus": ["b"], "hits": [1]}',
... ]
>>> log = read_decisions(lines, "decisions.jsonl")
>>> offer = log.offers[0]
>>> offer.pool, offer.shown, offer.propensities, sorted(offer.targets), log.open_offers
(['a', 'b'], ['b'], [0.9], ['b'], 0)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from streamcrm.events import parse_ts


@dataclass(frozen=True, slots=True)
class LoggedOffer:
    offer_id: str
    customer_id: str
    at: float
    pool: list[str]  # in the served order: the first len(shown) are the greedy list
    scores: list[float]  # served order's scores
    model: list[float]  # the learned ranker's scores
    features: dict[str, list[float]]  # feature name -> its value per pool SKU
    shown: list[str]  # slot 1 first
    propensities: list[float]  # the logging policy's P(slot j shows shown[j])
    shares: tuple[float, ...]  # each slot's exploration share
    targets: frozenset[str] = frozenset()  # what the customer added or bought next
    rewarded: bool = False  # an offer_reward was logged for it


@dataclass
class ExposureLog:
    offers: list[LoggedOffer] = field(default_factory=list)
    open_offers: int = 0  # reward window still open at the end of the log (left out)
    rewards: int = 0
    orphan_rewards: int = 0  # rewards of offers not in the log
    without_exposure: int = 0  # offers with no exposure (win-backs, exposure off)


def read_decisions(lines: Iterable[bytes | str], name: str) -> ExposureLog:
    """Read and join; a malformed line is a ``ValueError`` naming it."""
    offers: dict[str, tuple[dict[str, Any], float]] = {}
    rewards: dict[str, dict[str, Any]] = {}
    latest: dict[str, float] = {}  # customer -> time of their latest offer with exposure
    last = float("-inf")
    log = ExposureLog()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = orjson.loads(line)
            kind, ts = event["type"], parse_ts(event["ts"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            msg = f"{name} line {number}: not a decision event (JSON with type and ts)"
            raise ValueError(msg) from None
        last = max(last, ts)
        if kind == "next_best_offer":
            if "exposure" not in event:
                log.without_exposure += 1
                continue
            offers[event["offer_id"]] = (event, ts)
            customer = event["customer_id"]
            latest[customer] = max(latest.get(customer, ts), ts)
        elif kind == "offer_reward":
            rewards[event["offer_id"]] = event
    log.rewards = len(rewards)
    log.orphan_rewards = sum(1 for offer_id in rewards if offer_id not in offers)
    for offer_id, (event, ts) in offers.items():
        reward = rewards.get(offer_id)
        replaced = latest[event["customer_id"]] > ts
        expired = "expires_at" in event and parse_ts(event["expires_at"]) <= last
        if reward is None and not (replaced or expired):
            log.open_offers += 1
            continue
        try:
            log.offers.append(_offer(event, ts, reward))
        except (KeyError, TypeError, ValueError, IndexError):
            msg = f"{name}: offer {offer_id} has a malformed exposure (schemas/next_best_offer)"
            raise ValueError(msg) from None
    log.offers.sort(key=lambda o: (o.at, o.offer_id))
    return log


def _offer(event: dict[str, Any], ts: float, reward: dict[str, Any] | None) -> LoggedOffer:
    exposure = event["exposure"]
    pool = exposure["pool"]
    names = list(exposure["features"])
    columns = {n: [float(c["x"][i]) for c in pool] for i, n in enumerate(names)}
    items = sorted(event["items"], key=lambda i: i["rank"])
    propensities = [float(i["propensity"]) for i in items]
    if any(not 0.0 < p <= 1.0 for p in propensities):
        raise ValueError("propensity out of (0, 1]")
    return LoggedOffer(
        offer_id=event["offer_id"],
        customer_id=event["customer_id"],
        at=ts,
        pool=[str(c["sku"]) for c in pool],
        scores=[float(c["score"]) for c in pool],
        model=[float(c["model"]) for c in pool],
        features=columns,
        shown=[str(i["sku"]) for i in items],
        propensities=propensities,
        shares=tuple(float(e) for e in exposure["exploration"]),
        targets=frozenset(reward["skus"]) if reward is not None else frozenset(),
        rewarded=reward is not None,
    )
