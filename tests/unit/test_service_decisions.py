"""Complaint SLAs and coupon-abuse flags wired into the processor, on a simulated clock:
breaches are emitted to the service topic, open complaints hold marketing back (counted
by reason), flagged customers get a plain reminder instead of a coupon."""

from __future__ import annotations

from typing import Any

import orjson

from streamcrm.contract import validator
from streamcrm.decisions import CrmConfig
from streamcrm.events import format_ts
from streamcrm.ingest import BatchResult, Processor, Record
from streamcrm.outcomes import DECLARED
from streamcrm.policies.abandoned_cart import AbandonConfig, Stage
from streamcrm.policies.contact import ContactConfig
from streamcrm.protocol import TOPIC_OF
from streamcrm.state import CustomerState

KINDS = {"b": "browse", "c": "cart", "o": "order", "s": "service"}
T0 = 1_761_440_000.0
HOUR = 3600.0
# A coupon one hour after abandonment (abandoned after 30 min), no holdout.
CRM = CrmConfig(
    contact=ContactConfig(holdout_share=0.0),
    abandon=AbandonConfig(abandon_after=1800.0, stages=(Stage("coupon", HOUR, True),)),
)


class World:
    """One processor and its table; ``at(now, *events)`` is one batch at ``now``."""

    def __init__(self) -> None:
        self.processor = Processor(KINDS, crm=CRM, clock="wall")
        self.table: dict[str, CustomerState] = {}
        self.offset = 0

    def at(self, now: float, *bodies: dict[str, Any]) -> BatchResult:
        records = []
        for body in bodies:
            topic = {"cart": "c", "order": "o", "service": "s"}[_kind(body["type"])]
            self.offset += 1
            key = body["customer_id"].encode()
            records.append(Record(topic, 0, self.offset, key, orjson.dumps(body)))
        result = self.processor.process(records, self.table.get, now)
        for cid, (_, state) in result.states.items():
            self.table[cid] = state
        for event_type, _key, body in result.outputs():
            validator(event_type).validate(body)
        return result


def _kind(event_type: str) -> str:
    if event_type.startswith("complaint") or event_type == "customer_flag_cleared":
        return "service"
    return "order" if event_type.startswith("order") else "cart"


def ev(event_type: str, ts: float, customer: str = "c1", **body: Any) -> dict[str, Any]:
    return {
        "event_id": f"{event_type}-{customer}-{ts}", "type": event_type,
        "customer_id": customer, "ts": format_ts(ts), "channel": "web", **body,
    }  # fmt: skip


def cart(ts: float, customer: str = "c1") -> dict[str, Any]:
    return ev("cart_item_added", ts, customer, cart_id=f"k-{customer}", sku="s1", qty=1,
              unit_price=80.0)  # fmt: skip


def test_an_unanswered_complaint_breaches_once_and_holds_the_coupon_back() -> None:
    w = World()
    w.at(T0, cart(T0), ev("complaint_opened", T0, complaint_id="T1"))
    fired = w.at(T0 + 2 * HOUR)  # the coupon stage was due at T0 + 1.5 h
    assert fired.coupons == [] and fired.outcomes["suppressed_complaint_open"] == 1
    breached = w.at(T0 + 25 * HOUR)
    [(key, body)] = breached.emitted["sla_breached"]
    assert key == b"c1" and (body["sla"], body["phase"]) == ("first_reply", "breached")
    assert body["due_at"] == format_ts(T0 + 24 * HOUR)
    assert breached.outcomes["sla_breached_first_reply"] == 1
    assert w.at(T0 + 26 * HOUR).emitted["sla_breached"] == []  # never twice
    assert TOPIC_OF["sla_breached"] == "service_out"
    state = w.table["c1"]
    assert state.complaints is not None and state.complaints.open[0].reply_breached


def test_after_the_resolution_marketing_resumes_and_answer_times_are_bucketed() -> None:
    w = World()
    w.at(T0, ev("complaint_opened", T0, complaint_id="T1"))
    replied = w.at(T0 + 2 * HOUR, ev("complaint_replied", T0 + 2 * HOUR, complaint_id="T1"))
    assert replied.outcomes["complaint_first_reply_le_4h"] == 1
    resolved = w.at(T0 + 5 * HOUR, ev("complaint_resolved", T0 + 5 * HOUR, complaint_id="T1"))
    assert resolved.outcomes["complaint_resolution_le_24h"] == 1
    assert resolved.emitted["sla_breached"] == []
    w.at(T0 + 6 * HOUR, cart(T0 + 6 * HOUR))
    fired = w.at(T0 + 8 * HOUR)
    assert [bool(b["code"]) for _, b in fired.coupons] == [True] and fired.outcomes["couponed"] == 1


def test_a_late_reply_is_published_as_closed_late() -> None:
    w = World()
    w.at(T0, ev("complaint_opened", T0, complaint_id="T1"))
    late = w.at(T0 + 30 * HOUR, ev("complaint_replied", T0 + 30 * HOUR, complaint_id="T1"))
    # The reply is applied before the batch's deadlines fire: one closed_late, no breach.
    [(_, body)] = late.emitted["sla_breached"]
    assert (body["phase"], body["late_by_s"]) == ("closed_late", 6 * HOUR)
    assert late.outcomes["complaint_replied_late"] == 1
    assert late.outcomes["complaint_first_reply_le_72h"] == 1


def test_service_sub_states_survive_the_changelog_round_trip() -> None:
    w = World()
    w.at(T0, cart(T0), ev("complaint_opened", T0, complaint_id="T1"))
    state = w.table["c1"]
    assert state.abuse is not None and state.complaints is not None
    assert CustomerState.from_dict(orjson.loads(orjson.dumps(state))) == state


class Suspicious:
    """A detector that finds every scoring moment anomalous (and counts what it learned)."""

    ready = True

    def __init__(self) -> None:
        self.learned = 0

    def score_one(self, x: dict[str, float]) -> float:
        return 0.99

    def drivers(self, x: dict[str, float]) -> list[dict[str, Any]]:
        return [{"feature": "abandoned_carts_7d", "value": 9.0, "mean": 0.5, "z": 5.0}]

    def learn_one(self, x: dict[str, float]) -> None:
        self.learned += 1


def test_a_flagged_customer_gets_a_reminder_not_a_coupon_until_cleared() -> None:
    w = World()
    detector = Suspicious()
    w.processor.learners.anomaly = detector  # type: ignore[assignment]
    first = w.at(T0, cart(T0))
    [(key, flag)] = first.emitted["anomaly_flagged"]
    assert key == b"c1" and flag["score"] == 0.99 and detector.learned == 1
    assert TOPIC_OF["anomaly_flagged"] == "service_out"
    fired = w.at(T0 + 2 * HOUR)
    assert fired.outcomes["incentive_withheld_anomaly_flag"] == 1
    # The cart is still recalled, without a discount (a coupon_issued with no code).
    assert [b["code"] for _, b in fired.coupons] == [None] and fired.outcomes["reminded"] == 1
    cleared = ev("customer_flag_cleared", T0 + 3 * HOUR, flag_id=flag["flag_id"],
                 reason="manual_review")  # fmt: skip
    assert w.at(T0 + 3 * HOUR, cleared).outcomes["anomaly_flag_cleared"] == 1
    second = ev("cart_item_added", T0 + 4 * HOUR, cart_id="k2", sku="s2", qty=1, unit_price=80.0)
    again = w.at(T0 + 4 * HOUR, second)
    assert again.emitted["anomaly_flagged"] == []  # within the reviewer's grace
    fired = w.at(T0 + 6 * HOUR)
    assert [bool(b["code"]) for _, b in fired.coupons] == [True]


def test_a_flag_expires_on_its_deadline() -> None:
    w = World()
    w.processor.learners.anomaly = Suspicious()  # type: ignore[assignment]
    w.at(T0, cart(T0))
    expired = w.at(T0 + 15 * 24 * HOUR)
    assert expired.outcomes["anomaly_flag_expired"] == 1
    assert w.table["c1"].abuse is not None and w.table["c1"].abuse.flag is None


def test_every_new_outcome_is_declared() -> None:
    assert {"suppressed_complaint_open", "winback_complaint_open",
            "incentive_withheld_anomaly_flag", "complaint_resolution_le_inf"} <= DECLARED  # fmt: skip


def test_open_and_breached_complaints_are_churn_features() -> None:
    from streamcrm.learning.churn import churn_features

    w = World()
    w.at(T0, ev("complaint_opened", T0, complaint_id="T1"))
    w.at(T0 + 25 * HOUR)
    x = churn_features(w.table["c1"], T0 + 25 * HOUR)
    assert (x["complaints_open"], x["complaints_breached"]) == (1.0, 1.0)
    quiet = churn_features(CustomerState("c2", T0, T0), T0)
    assert (quiet["complaints_open"], quiet["complaints_breached"]) == (0.0, 0.0)
