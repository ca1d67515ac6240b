"""In-process counters of one worker, served at ``/stats``, ``/metrics`` and the dashboard."""

from __future__ import annotations

import bisect
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from streamcrm.app.lift_rows import LiftRows
from streamcrm.audit import is_stage
from streamcrm.experiments.lift import lift_readout
from streamcrm.ingest import BatchResult
from streamcrm.outcomes import Tally
from streamcrm.profiles_summary import hit_rates

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(slots=True)
class WorkerStats:
    started_at: float = field(default_factory=time.time)
    received_by_topic: Counter[str] = field(default_factory=Counter)
    applied_by_type: Counter[str] = field(default_factory=Counter)
    dead_by_reason: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    coupons_issued: int = 0
    profile_events: int = 0
    offers_emitted: int = 0
    duplicates: int = 0
    batches: int = 0
    max_event_ts: float | None = None
    # Event-to-decision latency: record append time (Kafka timestamp) to the batch being
    # applied and its outputs sent. A bounded window of the most recent events, as
    # (append time, latency) so a benchmark can leave out its warm-up.
    latencies_s: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=20_000))
    latency_bucket_counts: list[int] = field(
        default_factory=lambda: [0] * (len(LATENCY_BUCKETS_S) + 1)
    )
    latency_sum_s: float = 0.0
    latency_count: int = 0
    # Next offset to read per (topic, partition): with the highwater, the consumer lag.
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    recent_decisions: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=25))
    timer_fires: int = 0
    timer_lag_sum_s: float = 0.0
    timer_lag_max_s: float = 0.0
    lift_rows: LiftRows = field(default_factory=LiftRows)  # resolved carts, for the lift

    def add(self, result: BatchResult) -> None:
        self.received_by_topic.update(result.received)
        self.applied_by_type.update(result.applied)
        self.dead_by_reason.update(result.dead_by_reason)
        self.outcomes.update(result.outcomes)
        self.coupons_issued += len(result.coupons)
        self.profile_events += len(result.profile_events)
        self.offers_emitted += len(result.offers)
        self.duplicates += result.duplicates
        self.batches += 1
        self.recent_decisions.extend(filter(is_stage, result.decisions))
        self.lift_rows.add(result.decisions)
        if result.max_event_ts is not None:
            self.max_event_ts = max(self.max_event_ts or result.max_event_ts, result.max_event_ts)

    def processed(self, records: list[tuple[str, int, int, float]], done_at: float) -> None:
        """(topic, partition, offset, append time) of each record of a finished batch."""
        counts = self.latency_bucket_counts
        for topic, partition, offset, ts in records:
            self.next_offsets[(topic, partition)] = offset + 1
            if ts:
                latency = done_at - ts
                self.latencies_s.append((ts, latency))
                counts[bisect.bisect_left(LATENCY_BUCKETS_S, latency)] += 1
                self.latency_sum_s += latency
                self.latency_count += 1

    def latency_quantiles(self, since: float | None = None) -> dict[str, float | None]:
        """p50/p99 over the window, or over the events appended at or after ``since``."""
        ordered = sorted(lat for at, lat in self.latencies_s if since is None or at >= since)
        if not ordered:
            return {"p50_ms": None, "p99_ms": None, "samples": 0}

        def pick(q: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

        return {"p50_ms": pick(0.50), "p99_ms": pick(0.99), "samples": len(ordered)}

    def fired_late(self, lag_s: float) -> None:
        """How long after its due time a wall-clock deadline actually fired."""
        self.timer_fires += 1
        self.timer_lag_sum_s += lag_s
        self.timer_lag_max_s = max(self.timer_lag_max_s, lag_s)

    def as_dict(self, latency_since: float | None = None) -> dict[str, Any]:
        o = Tally(self.outcomes)
        received = sum(self.received_by_topic.values())
        applied = sum(self.applied_by_type.values())
        dead = sum(self.dead_by_reason.values())
        return {
            "events_in": received,
            "applied": applied,
            "dead_letters": dead,
            "duplicates": self.duplicates,
            "received_by_topic": dict(self.received_by_topic),
            "applied_by_type": dict(self.applied_by_type),
            "dead_letters_by_reason": dict(self.dead_by_reason),
            "batches": self.batches,
            "latency": self.latency_quantiles(latency_since),
            "timer_fires": self.timer_fires,
            "timer_lag_mean_s": round(self.timer_lag_sum_s / self.timer_fires, 4)
            if self.timer_fires
            else None,
            "timer_lag_max_s": round(self.timer_lag_max_s, 4),
            "coupons_issued": self.coupons_issued,
            "profile_events": self.profile_events,
            "offers_emitted": self.offers_emitted,
            "winbacks_sent": o["winback_sent"],
            **hit_rates(self.outcomes),
            "abandoned_cart": {
                "carts": o["cart_started"],
                "carts_abandoned": o["cart_abandoned"],
                "reminded": o["reminded"],
                "couponed": o["couponed"],
                "holdout": o["holdout"],
                "suppressed": sum(o.family("suppressed_").values()),
                "suppressed_by_reason": o.family("suppressed_"),
                # Incentive stages that sent a plain reminder: given once per cart/window.
                "incentives_withheld": sum(o.family("incentive_withheld_").values()),
                "incentives_withheld_by_reason": o.family("incentive_withheld_"),
                "recovered": o["recovered_treated"]
                + o["recovered_holdout"]
                + o["recovered_uncontacted"],
                "recovered_treated": o["recovered_treated"],
                "recovered_holdout": o["recovered_holdout"],
                "recovered_uncontacted": o["recovered_uncontacted"],
                "redeemed": o["redeemed"],
            },
            # Right to erasure: customers forgotten, and their events dropped afterwards
            # (stamped before the request: late on another topic, or redelivered).
            "erasures": {"erased": o["customer_erased"], "events_dropped": o["erased_event_dropped"]},
            "service": service_readout(o),
            "flash_sales": flash_readout(o),
            # Counters per cart (lift_readout), and per customer and cart from the resolved
            # carts, with revenue and coupon cost (experiments/lift.py lift_from_rows).
            "lift": lift_readout(self.outcomes) | self.lift_rows.readout(time.time()),
            "uptime_s": round(time.time() - self.started_at, 3),
        }


def flash_readout(o: Tally) -> dict[str, Any]:
    """Flash-sale campaigns and notices (decisions/flash_sale.py)."""
    by_notice = {k: o[f"flash_notice_{k}"] for k in ("early_access", "starts_now", "last_chance")}
    return {
        "campaigns": o["flash_campaign_announced"],
        "enrolled": o["flash_enrolled"],
        "notifications": sum(by_notice.values()),
        "notifications_by_notice": by_notice,
        "suppressed_by_reason": o.family("flash_suppressed_"),
        "last_chance_skipped": o["flash_last_chance_skipped"],
        "expired": o["flash_notice_expired"],
    }


def service_readout(o: Tally) -> dict[str, Any]:
    """Complaint SLAs and coupon-abuse flags (decisions/complaint_sla.py, coupon_abuse.py)."""
    return {
        "complaints_opened": o["complaint_opened"],
        "complaints_resolved": o["complaint_resolved"],
        "sla_breaches": o["sla_breached_first_reply"] + o["sla_breached_resolution"],
        "sla_breaches_by_sla": {
            "first_reply": o["sla_breached_first_reply"],
            "resolution": o["sla_breached_resolution"],
        },
        # Marketing held back by an open complaint (abandoned-cart stages and win-back).
        "marketing_held": o["suppressed_complaint_open"] + o["winback_complaint_open"],
        "anomaly_flags": o["anomaly_flagged"],
        "flags_cleared": o["anomaly_flag_cleared"],
        "flags_expired": o["anomaly_flag_expired"],
        "incentives_withheld_by_flag": o["incentive_withheld_anomaly_flag"],
    }
