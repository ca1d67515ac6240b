"""Replay mapped records through :class:`~streamcrm.ingest.Processor` on event time. Pure.

The same decision code as the worker, with the table in a dict and one partition:
deadlines fire as the watermark (the largest event time so far) passes them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamcrm.decisions import CrmConfig
from streamcrm.erasure import Marker
from streamcrm.ingest import Processor, Record
from streamcrm.outcomes import Tally
from streamcrm.profiles_summary import BASELINES, hit_rates, profile_distribution
from streamcrm.replay.adapters import Mapped
from streamcrm.replay.evaluation import auc_ci, exact_auc, offer_ci, ratio_ci
from streamcrm.state import CustomerState

KINDS = {"browse": "browse", "cart": "cart", "order": "order"}
BUCKET_S = 3600.0


@dataclass(slots=True)
class ReplayOutcome:
    events: int = 0
    applied: int = 0
    dead_letters: int = 0
    duplicates: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    coupons: list[dict[str, Any]] = field(default_factory=list)
    customers: int = 0
    timers_pending: int = 0
    profile_events: int = 0
    offers: list[dict[str, Any]] = field(default_factory=list)
    profiles: dict[str, Any] = field(default_factory=dict)
    churn_auc: float | None = None
    ranker: dict[str, Any] = field(default_factory=dict)  # the offer ranker at the end
    churn_labels: int = 0
    churn: dict[str, Any] = field(default_factory=dict)  # exact AUCs, CIs, baselines
    # Per event-time hour: events in, and each outcome, for the report's plots.
    timeline: dict[float, Counter[str]] = field(default_factory=dict)
    bucket_s: float = BUCKET_S
    # Per customer, each evaluated offer's outcomes (for customer-clustered intervals).
    evaluations: dict[str, list[list[str]]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        o = Tally(self.outcomes)
        recovered = o["recovered_treated"] + o["recovered_holdout"] + o["recovered_uncontacted"]
        return {
            "events": self.events,
            "applied": self.applied,
            "dead_letters": self.dead_letters,
            "duplicates": self.duplicates,
            "customers": self.customers,
            "carts": o["cart_started"],
            "carts_abandoned": o["cart_abandoned"],
            "coupons_issued": len(self.coupons),
            "reminded": o["reminded"],
            "couponed": o["couponed"],
            "holdout": o["holdout"],
            "suppressed": sum(o.family("suppressed_").values()),
            "recovered": recovered,
            "recovered_treated": o["recovered_treated"],
            "recovered_holdout": o["recovered_holdout"],
            "recovered_uncontacted": o["recovered_uncontacted"],
            "redeemed": o["redeemed"],
            "timers_pending": self.timers_pending,
            "profile_events": self.profile_events,
            **self.profiles,
            "churn_progressive_auc": self.churn_auc,
            "churn_labels": self.churn_labels,
            **self.churn,
            "winbacks_sent": o["winback_sent"],
            "offers_emitted": len(self.offers),
            **offer_summary(self.outcomes, self.evaluations),
            "offer_ranker": self.ranker,
        }


def offer_summary(outcomes: Counter[str], per: dict[str, list[list[str]]]) -> dict[str, Any]:
    """:func:`hit_rates`, with 95% intervals over customers for the offers and the ratio."""
    rates = hit_rates(outcomes)
    for k, suffix in ((5, ""), (10, "_at_10")):
        rates[f"offer_hit_rate_at_{k}_ci"] = offer_ci(per, f"model_hit_at_{k}")
        best = rates[f"best_baseline_at_{k}"]
        prefix = BASELINES.get(best) if best is not None else None
        rates[f"offer_vs_best_baseline{suffix}_ci"] = (
            ratio_ci(per, f"model_hit_at_{k}", f"{prefix}_hit_at_{k}") if prefix else None
        )
    return rates


def churn_summary(history: list[tuple[str, float, bool, float, float]]) -> dict[str, Any]:
    """Exact ROC AUC (of ordering again) of the model and of two simple scores on the same
    labels: the order count, and minus the recency over the customer's mean gap."""
    groups = [h[0] for h in history]
    labels = [h[2] for h in history]
    out: dict[str, Any] = {}
    columns = {
        "model": [h[1] for h in history], "order_count": [h[3] for h in history],
        "recency_over_gap": [h[4] for h in history],
    }  # fmt: skip
    for name, scores in columns.items():
        key = "churn_auc" if name == "model" else f"churn_baseline_auc_{name}"
        out[key] = exact_auc(scores, labels)
        out[key + "_ci"] = auc_ci(scores, labels, groups) if out[key] is not None else None
    model, count = out["churn_auc"], out["churn_baseline_auc_order_count"]
    out["churn_auc_vs_order_count"] = (
        round(model - count, 4) if model is not None and count is not None else None
    )
    return out


_RANK = {"browse": 0, "cart": 1, "order": 2}


def replay_order(mapped: Sequence[Mapped]) -> list[Mapped]:
    """Event time, then topic (browse, cart, order), then log order: the order the worker's
    reorder buffer releases, so in-memory and via-Kafka replays agree on ties."""
    return sorted(mapped, key=lambda m: (m.ts, _RANK[m.topic_kind]))


def replay(
    mapped: Sequence[Mapped],
    *,
    crm: CrmConfig,
    batch_size: int = 50,
    progress: Callable[[int, int], None] | None = None,
    decisions: Callable[[list[dict[str, Any]]], None] | None = None,
) -> ReplayOutcome:
    """``decisions``: called per batch with every offer, coupon and profile event it
    emitted, in event-time order (ties: coupons, offers, profile events)."""
    processor = Processor(KINDS, crm=crm, clock="event")
    processor.learners.churn.history = []  # every label, for the exact AUC and baselines
    table: dict[str, CustomerState] = {}
    markers: dict[str, Marker] = {}  # erased customers (a jsonl log may erase some)
    result = ReplayOutcome()
    mapped = replay_order(mapped)
    if mapped and mapped[-1].ts - mapped[0].ts < 6 * 3600:
        result.bucket_s = 300.0  # a short log: five-minute buckets keep the plots readable
    bucket_s = result.bucket_s
    for start in range(0, len(mapped), batch_size):
        chunk = mapped[start : start + batch_size]
        records = [Record(m.topic_kind, 0, start + i, m.key, m.value) for i, m in enumerate(chunk)]
        now = max(m.ts for m in chunk)
        batch = processor.process(records, table.get, now, erased=markers.get)
        for customer_id, (_, marker) in batch.erasures.items():  # before states: see BatchResult
            table.pop(customer_id, None)
            markers[customer_id] = marker
        for customer_id, (_, state) in batch.states.items():
            table[customer_id] = state
        result.events += len(chunk)
        result.applied += sum(batch.applied.values())
        result.dead_letters += len(batch.dead_letters)
        result.duplicates += batch.duplicates
        result.outcomes.update(batch.outcomes)
        result.coupons.extend(coupon for _, coupon in batch.coupons)
        result.offers.extend(offer for _, offer in batch.offers)
        result.profile_events += len(batch.profile_events)
        if decisions is not None:
            emitted = [e for _, e in (*batch.coupons, *batch.offers, *batch.profile_events)]
            decisions(sorted(emitted, key=lambda e: e["ts"]))  # ISO UTC text sorts as time
        for customer_id, hits in batch.evaluations:
            result.evaluations.setdefault(customer_id, []).append(hits)
        for m in chunk:
            result.timeline.setdefault(m.ts - m.ts % bucket_s, Counter())["events"] += 1
        # Outcomes are counted per batch (small batches keep the hour right).
        bucket = result.timeline.setdefault(now - now % bucket_s, Counter())
        bucket.update(batch.outcomes)
        bucket["coupons_issued"] += len(batch.coupons)
        if progress is not None:
            progress(result.events, len(mapped))
    result.customers = len(table)
    result.timers_pending = processor.pending_timers()
    result.profiles = profile_distribution(table.values())
    result.churn_auc = processor.learners.churn.progressive_auc()
    result.churn_labels = processor.learners.churn.labels
    result.churn = churn_summary(processor.learners.churn.history or [])
    learners = processor.learners
    result.ranker = {
        "version": learners.ranker.version, "weights": learners.ranker.weights(),
        "intercept": round(float(learners.ranker.lr.intercept), 4),
        "gate": learners.gate.as_dict(), "serving": "model" if learners.gate.use_model else "fallback",
        "choices_learned": Tally(result.outcomes)["choice_learned"],
        "choices_target_not_candidate": Tally(result.outcomes)["choice_target_not_candidate"],
    }  # fmt: skip
    return result
