"""Win-back as a decision: one offer per at-risk episode, sent when the profile decision
reports the customer becoming at risk, through the shared contact policy. Pure: no
learner is touched."""

from __future__ import annotations

import hashlib
from typing import Any

from streamcrm.audit import WINBACK_KIND
from streamcrm.crm_config import CrmConfig
from streamcrm.decisions.profile import became
from streamcrm.events import Event, format_ts
from streamcrm.evolve import evolve
from streamcrm.policies.contact import REASONS, history, hold
from streamcrm.protocol import Context, Emitted, Step
from streamcrm.state import CustomerState

NAME = "winback"
OUTCOMES = frozenset(
    {"winback_sent", "winback_no_candidates", *(f"winback_{r}" for r in REASONS)}
)
EMITS = frozenset({"next_best_offer"})
FOLLOWS = frozenset({"customer_profile_updated"})
MODEL_VERSION = "affinity-rule-v1"


def on_event(state: CustomerState, event: Event, ctx: Context) -> Step:
    return Step(state)


def due(state: CustomerState, config: CrmConfig) -> float | None:
    return None


def on_due(state: CustomerState, now: float, ctx: Context) -> Step:
    return Step(state)


def on_emitted(state: CustomerState, emitted: Emitted, ctx: Context) -> Step:
    if not became(emitted, "lifecycle_stage", "at_risk"):
        return Step(state)
    return _winback(state, emitted.at, ctx.config)


def _winback(state: CustomerState, at: float, config: CrmConfig) -> Step:
    p = state.profile
    if (
        p.winback_sent_at is not None
        and state.last_order_at is not None
        and p.winback_sent_at > state.last_order_at
    ):
        return Step(state)  # already sent in this episode
    contact = config.contact
    verdict = contact.check(
        "winback", state.customer_id, consent=contact.consent(state.consent),
        history=history(state, at), now=at, hold=hold(state, at, config.sla),
    )  # fmt: skip
    offer_id = winback_offer_id(state)
    record: dict[str, Any] = {
        "customer_id": state.customer_id, "at": at, "kind": WINBACK_KIND, "offer_id": offer_id,
        "verdict": verdict.reason, "sent": False,
        "inputs": {"last_order_at": state.last_order_at, "churn_score": p.churn_score},
    }  # fmt: skip
    if not verdict.allowed:
        return Step(state, outcomes=(f"winback_{verdict.reason}",), audit=(record,))
    items = affinity_items(state, config.winback_items)
    if not items:
        record |= {"verdict": "no_candidates"}
        return Step(state, outcomes=("winback_no_candidates",), audit=(record,))
    record |= {"sent": True, "items": [i["sku"] for i in items]}
    body = {
        "event_id": offer_id,
        "type": "next_best_offer",
        "customer_id": state.customer_id,
        "ts": format_ts(at),
        "offer_id": offer_id,
        "trigger": "win_back",
        "model_version": MODEL_VERSION,
        "items": items,
    }
    state = evolve(state, profile=evolve(p, winback_sent_at=at))
    return Step(
        state, emitted=(Emitted("next_best_offer", body, at),), outcomes=("winback_sent",),
        audit=(record,),
    )  # fmt: skip


def winback_offer_id(state: CustomerState) -> str:
    """The win-back offer of the customer's current at-risk episode (one per episode)."""
    digest = hashlib.sha256(f"{state.customer_id}|{state.last_order_at}".encode()).hexdigest()
    return "wb-" + digest[:24]


def affinity_items(state: CustomerState, n: int) -> list[dict[str, Any]]:
    """Recently viewed products in the customer's most viewed category, not bought lately."""
    counts: dict[str, int] = {}
    for view in state.recent_views:
        counts[view.category] = counts.get(view.category, 0) + 1
    if not counts:
        return []
    favourite = max(sorted(counts), key=counts.__getitem__)
    picks = [v.sku for v in state.recent_views if v.category == favourite][:n]
    return [
        {"sku": sku, "rank": i + 1, "score": 1.0 / (i + 1), "propensity": 1.0,
         "reason": f"you looked at this in {favourite}"[:256]}
        for i, sku in enumerate(picks)
    ]  # fmt: skip
