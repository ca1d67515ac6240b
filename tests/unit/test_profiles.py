"""Profiles on a simulated clock: lifecycle, tiers, points, RFM, churn labels, win-back."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from streamcrm.contract import validator
from streamcrm.decisions import CrmConfig
from streamcrm.events import format_ts
from streamcrm.ingest import BatchResult, Processor, Record
from streamcrm.learning.rfm import RFMScorer, segment
from streamcrm.policies.contact import ContactConfig
from streamcrm.policies.profile import ProfileConfig, tier
from streamcrm.state import CustomerState

T0 = 1_790_000_000.0
DAY = 86_400.0
TOPICS = {"b": "browse", "c": "cart", "o": "order"}
TOPIC_OF = {
    "product_viewed": "b",
    "order_placed": "o",
    "order_cancelled": "o",
    "consent_updated": "o",
}
NO_HOLDOUT = CrmConfig(contact=ContactConfig(holdout_share=0.0))


class Customer:
    def __init__(self, config: CrmConfig = NO_HOLDOUT) -> None:
        self.processor = Processor(TOPICS, crm=config, clock="event")
        self.table: dict[str, CustomerState] = {}
        self.profile_events: list[dict[str, Any]] = []
        self.offers: list[dict[str, Any]] = []
        self.outcomes: list[str] = []
        self.n = 0

    def send(self, type_: str, ts: float, event_id: str | None = None, **body: Any) -> None:
        self.n += 1
        event = {"event_id": event_id or f"e{self.n}", "type": type_, "customer_id": "c1",
                 "ts": format_ts(ts), "channel": "web", **body}  # fmt: skip
        record = Record(TOPIC_OF[type_], 0, self.n, b"c1", orjson.dumps(event))
        self._take(self.processor.process([record], self.table.get, now=ts))

    def order(self, ts: float, total: float, order_id: str, event_id: str | None = None) -> None:
        line = [{"sku": "s1", "qty": 1, "unit_price": total}]
        self.send("order_placed", ts, event_id=event_id, order_id=order_id, lines=line, total=total)

    def view(self, ts: float, sku: str = "s9", category: str = "shoes") -> None:
        self.send("product_viewed", ts, sku=sku, category=category, price=20.0)

    def _take(self, result: BatchResult) -> None:
        for cid, (_, state) in result.states.items():
            self.table[cid] = state
        self.profile_events += [e for _, e in result.profile_events]
        self.offers += [o for _, o in result.offers]
        self.outcomes += list(result.outcomes.elements())

    @property
    def profile(self) -> Any:
        return self.table["c1"].profile

    def stages(self) -> list[str]:
        return [
            c["new"]
            for e in self.profile_events
            for c in e["changes"]
            if c["field"] == "lifecycle_stage"
        ]


def test_lifecycle_prospect_new_active_at_risk_churned_and_back() -> None:
    c = Customer()
    c.view(T0)
    assert c.profile.lifecycle_stage == "prospect" and c.profile_events == []
    c.order(T0 + DAY, 50.0, "o1")
    c.order(T0 + 11 * DAY, 50.0, "o2")  # rhythm: 10 days
    assert c.stages() == ["new", "active"]
    c.view(T0 + 30 * DAY)  # 19 days silent: under 2 x rhythm
    c.view(T0 + 32 * DAY)  # past 2 x 10 days: at risk (the deadline fired at day 31)
    assert c.stages() == ["new", "active", "at_risk"]
    at_risk = next(e for e in c.profile_events if e["changes"][0]["new"] == "at_risk")
    assert at_risk["ts"] == format_ts(T0 + 31 * DAY)  # decided at the deadline, not when noticed
    c.view(T0 + 60 * DAY)
    assert c.stages()[-1] == "churned"
    c.order(T0 + 61 * DAY, 50.0, "o3")
    assert c.stages()[-1] == "active"
    for event in c.profile_events:
        validator("customer_profile_updated").validate(event)
        assert {"field", "old", "new"} <= set(event["changes"][0])


def test_loyal_after_enough_orders() -> None:
    c = Customer(CrmConfig(profile=ProfileConfig(loyal_orders=3)))
    for i in range(3):
        c.order(T0 + i * 5 * DAY, 20.0, f"o{i}")
    assert c.stages() == ["new", "active", "loyal"]


@pytest.mark.parametrize(
    ("spend", "expected"),
    [(0.0, "none"), (99.99, "none"), (100.0, "silver"), (1999.0, "gold"), (2000.0, "platinum")],
)
def test_tier_thresholds(spend: float, expected: str) -> None:
    assert tier(spend, ProfileConfig()) == expected


def test_tier_follows_rolling_spend_and_emits_changes() -> None:
    c = Customer()
    c.order(T0, 120.0, "o1")
    assert c.profile.tier == "silver"
    c.order(T0 + 2 * DAY, 400.0, "o2")
    assert c.profile.tier == "gold"
    tiers = [ch["new"] for e in c.profile_events for ch in e["changes"] if ch["field"] == "tier"]
    assert tiers == ["silver", "gold"]
    c.view(T0 + 400 * DAY)  # a year later the window no longer holds that spend
    assert c.profile.tier == "none"


def test_points_use_the_tier_multiplier_and_reverse_exactly_once() -> None:
    c = Customer()
    c.order(T0, 120.0, "o1")  # no tier yet: 120 x 1.0
    c.order(T0 + DAY, 100.0, "o2")  # silver now: 100 x 1.25
    assert c.profile.points == 120 + 125
    c.send("order_cancelled", T0 + 2 * DAY, order_id="o2")
    assert c.profile.points == 120
    c.send("order_cancelled", T0 + 2 * DAY, order_id="o2")  # again: nothing more to reverse
    c.send("order_cancelled", T0 + 2 * DAY, order_id="nope")
    assert c.profile.points == 120


def test_points_are_idempotent_by_event_and_by_order() -> None:
    c = Customer()
    c.order(T0, 80.0, "o1", event_id="same")
    c.order(T0, 80.0, "o1", event_id="same")  # redelivered
    c.order(T0, 80.0, "o1", event_id="other")  # the same order under another id
    assert c.profile.points == 80 and c.table["c1"].order_count == 1


def test_rfm_scores_against_the_population() -> None:
    scorer = RFMScorer(min_customers=10)
    assert scorer.score_one(recency_days=1, frequency=1, monetary=1) is None  # too early to say
    for i in range(200):
        scorer.learn_one(recency_days=i % 100, frequency=1 + i % 10, monetary=float(i))
    assert scorer.score_one(recency_days=0.5, frequency=10, monetary=199) == (5, 5, 5)
    assert scorer.score_one(recency_days=99, frequency=1, monetary=0) == (1, 1, 1)
    assert segment((5, 5, 5)) == "champions" and segment((1, 5, 5)) == "cant_lose"
    assert segment((2, 4, 1)) == "at_risk" and segment((5, 1, 3)) == "new"
    assert segment((2, 1, 1)) == "hibernating" and segment((1, 1, 1)) == "lost"


def test_churn_labels_resolve_later_positive_and_negative() -> None:
    c = Customer(CrmConfig(abandon=NO_HOLDOUT.abandon, churn_horizon_s=10 * DAY))
    c.order(T0, 30.0, "o1")
    c.order(T0 + 5 * DAY, 30.0, "o2")  # within 10 days of o1: label 1
    assert c.processor.learners.churn.labels == 1 and c.processor.learners.churn.positives == 1
    c.view(T0 + 16 * DAY)  # o2's horizon passed with no order: label 0
    assert c.processor.learners.churn.labels == 2 and c.processor.learners.churn.positives == 1
    assert "churn_label_0" in c.outcomes
    assert 0.0 <= c.profile.churn_score <= 1.0


def test_win_back_once_per_at_risk_episode_with_consent_only() -> None:
    c = Customer()
    c.view(T0, sku="s1", category="shoes")
    c.view(T0 + 1, sku="s2", category="shoes")
    c.order(T0 + DAY, 50.0, "o1")
    c.view(T0 + 70 * DAY)  # at risk (2 x 30 default rhythm), then churned
    winbacks = [o for o in c.offers if o["trigger"] == "win_back"]
    assert len(winbacks) == 1
    offer = winbacks[0]
    validator("next_best_offer").validate(offer)
    assert offer["trigger"] == "win_back" and [i["sku"] for i in offer["items"]] == ["s2", "s1"]
    quiet = Customer()
    quiet.send("consent_updated", T0, marketing=False)
    quiet.order(T0 + DAY, 50.0, "o1")
    quiet.view(T0 + 70 * DAY)
    assert quiet.offers == [] and "winback_no_consent" in quiet.outcomes  # no offers of any kind


def test_profile_state_round_trips() -> None:
    c = Customer()
    c.order(T0, 120.0, "o1")
    c.order(T0 + 3 * DAY, 30.0, "o2")
    state = c.table["c1"]
    assert CustomerState.from_dict(orjson.loads(orjson.dumps(state))) == state
