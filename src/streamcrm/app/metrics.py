"""``/metrics`` in Prometheus text format, read from the worker's own counters at scrape time.

A collector, not a second set of counters: the numbers on ``/stats``, the dashboard and
``/metrics`` are the same numbers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from streamcrm.app.outbox import Outbox
from streamcrm.app.resync import SnapshotSync
from streamcrm.app.stats import LATENCY_BUCKETS_S, WorkerStats
from streamcrm.decisions import complaint_sla
from streamcrm.ingest import Processor
from streamcrm.outcomes import Tally
from streamcrm.profiles_summary import hit_rates
from streamcrm.serving import SnapshotWriter

OUTCOMES = (
    "cart_started", "cart_abandoned", "reminded", "couponed", "holdout",
    "recovered_treated", "recovered_holdout", "recovered_uncontacted", "redeemed",
)  # fmt: skip
SERVICE_OUTCOMES = (
    "complaint_opened", "complaint_resolved", "sla_breached_first_reply",
    "sla_breached_resolution", "suppressed_complaint_open", "winback_complaint_open",
    "anomaly_flagged", "anomaly_flag_cleared", "anomaly_flag_expired",
    "incentive_withheld_anomaly_flag",
)  # fmt: skip


class WorkerCollector(Collector):
    def __init__(
        self,
        stats: WorkerStats,
        processor: Processor,
        snapshots: SnapshotWriter | None,
        table_size: Any,
        highwater: Any,
        distribution: Any,
        outbox: Outbox,
        *,
        sync: SnapshotSync | None = None,
    ) -> None:
        self.stats, self.processor, self.snapshots = stats, processor, snapshots
        self.outbox, self.sync = outbox, sync
        self.table_size, self.highwater, self.distribution = table_size, highwater, distribution

    def collect(self) -> Iterator[Metric]:
        s = self.stats
        received = CounterMetricFamily(
            "streamcrm_events_in", "Records read from input topics.", labels=["topic"]
        )
        for topic, n in sorted(s.received_by_topic.items()):
            received.add_metric([topic], n)
        yield received
        applied = CounterMetricFamily(
            "streamcrm_events_applied", "Events applied to customer state.", labels=["type"]
        )
        for event_type, n in sorted(s.applied_by_type.items()):
            applied.add_metric([event_type], n)
        yield applied
        dead = CounterMetricFamily(
            "streamcrm_dead_letters", "Records sent to the dead-letter topic.", labels=["reason"]
        )
        for reason, n in sorted(s.dead_by_reason.items()):
            dead.add_metric([reason], n)
        yield dead
        yield CounterMetricFamily(
            "streamcrm_duplicates", "Redelivered events dropped by event_id.", value=s.duplicates
        )
        outcomes = CounterMetricFamily(
            "streamcrm_abandoned_cart_outcomes",
            "Abandoned-cart funnel and recoveries.",
            labels=["outcome"],
        )
        tally = Tally(s.outcomes)
        for name in OUTCOMES:
            outcomes.add_metric([name], tally[name])
        for reason, n in sorted(tally.family("suppressed_").items()):
            outcomes.add_metric([f"suppressed_{reason}"], n)
        yield outcomes
        yield CounterMetricFamily(
            "streamcrm_coupons_issued", "coupon_issued events published.", value=s.coupons_issued
        )
        yield CounterMetricFamily(
            "streamcrm_offers_emitted",
            "next_best_offer events (win-back offers so far).",
            value=s.offers_emitted,
        )
        yield CounterMetricFamily(
            "streamcrm_profile_events",
            "customer_profile_updated events published.",
            value=s.profile_events,
        )
        yield from self._profiles()
        yield from _service(tally)
        yield from _lift(s.lift_rows.readout(time.time()))
        yield self._latency()
        lag = GaugeMetricFamily(
            "streamcrm_consumer_lag", "Records not yet processed.", labels=["topic", "partition"]
        )
        for (topic, partition), next_offset in sorted(s.next_offsets.items()):
            highwater = self.highwater(topic, partition)
            if highwater is not None:
                lag.add_metric([topic, str(partition)], max(highwater - next_offset, 0))
        yield lag
        yield GaugeMetricFamily(
            "streamcrm_table_customers",
            "Customers in this worker's table.",
            value=self.table_size(),
        )
        yield GaugeMetricFamily(
            "streamcrm_timers_pending",
            "Pending abandoned-cart deadlines.",
            value=self.processor.pending_timers(),
        )
        yield GaugeMetricFamily(
            "streamcrm_reorder_buffered",
            "Events waiting for event-time order.",
            value=self.processor.buffered(),
        )
        yield CounterMetricFamily(
            "streamcrm_kafka_records_sent",
            "Records handed to the Kafka producer (outputs and changelog).",
            value=self.outbox.sent,
        )
        yield CounterMetricFamily(
            "streamcrm_kafka_delivery_failures",
            "Records the producer could not deliver.",
            value=self.outbox.failed,
        )
        if self.snapshots is not None:
            snap = self.snapshots.stats
            yield CounterMetricFamily(
                "streamcrm_redis_snapshot_writes", "Customer snapshots written.", value=snap.writes
            )
            yield CounterMetricFamily(
                "streamcrm_redis_errors", "Failed Redis pipeline flushes.", value=snap.errors
            )
            yield CounterMetricFamily(
                "streamcrm_redis_flush_seconds",
                "Time in Redis pipeline flushes.",
                value=snap.flush_seconds_sum,
            )
        if self.sync is not None:
            yield from self._convergence(self.sync.as_dict())

    def _convergence(self, sync: dict[str, Any]) -> Iterator[Metric]:
        """How far Redis is behind the table (app/resync.py)."""
        for name, help_text, value in (
            ("streamcrm_redis_snapshots_pending", "Snapshots staged, not yet in Redis.",
             sync["pending"]),
            ("streamcrm_redis_oldest_unsynced_seconds",
             "Age of the oldest snapshot not yet in Redis (0 if none).",
             sync["oldest_unsynced_s"] or 0.0),
            ("streamcrm_redis_up", "1 if Redis answered the last write or probe.",
             1 if sync["redis_up"] else 0),
            ("streamcrm_redis_resync_remaining",
             "Customers the running resync from the table has yet to look at.",
             sync["resync_remaining"]),
        ):  # fmt: skip
            yield GaugeMetricFamily(name, help_text, value=value)
        resyncs = CounterMetricFamily(
            "streamcrm_redis_resyncs", "Resyncs of Redis from the table, by reason.",
            labels=["reason"],
        )  # fmt: skip
        for reason, n in sync["resyncs"].items():
            resyncs.add_metric([reason], n)
        yield resyncs
        yield CounterMetricFamily(
            "streamcrm_redis_resynced_snapshots",
            "Snapshots rewritten from the table by resyncs.",
            value=sync["resynced"],
        )

    def _profiles(self) -> Iterator[Metric]:
        distribution = self.distribution()
        for name, key, help_text in (
            ("streamcrm_customers_by_lifecycle", "lifecycle", "Customers per lifecycle stage."),
            ("streamcrm_customers_by_segment", "segments", "Customers per RFM segment."),
            ("streamcrm_customers_by_tier", "tiers", "Customers per VIP tier."),
        ):
            family = GaugeMetricFamily(name, help_text, labels=["value"])
            for value, n in distribution[key].items():
                family.add_metric([value], n)
            yield family
        rates = GaugeMetricFamily(
            "streamcrm_offer_hit_rate",
            "Prequential hit rate on the next cart add or buy: the offers (model) and every "
            "baseline at the same moments; upper_bound: share of targets seen at all.",
            labels=["ranker", "k"],
        )
        summary = hit_rates(self.stats.outcomes)
        for k in ("5", "10"):
            if summary[f"offer_hit_rate_at_{k}"] is not None:
                rates.add_metric(["model", k], summary[f"offer_hit_rate_at_{k}"])
            for name, value in summary[f"baseline_hit_rate_at_{k}"].items():
                if value is not None:
                    rates.add_metric([name, k], value)
        if summary["offer_hit_rate_upper_bound"] is not None:
            rates.add_metric(["upper_bound", "any"], summary["offer_hit_rate_upper_bound"])
        yield rates
        auc = self.processor.learners.churn.progressive_auc()
        if auc is not None:
            yield GaugeMetricFamily(
                "streamcrm_churn_progressive_auc", "Churn model, prequential ROC AUC.", value=auc
            )

    def _latency(self) -> Metric:
        s = self.stats
        cumulative, buckets = 0, []
        for bound, n in zip(
            (*LATENCY_BUCKETS_S, float("inf")), s.latency_bucket_counts, strict=True
        ):
            cumulative += n
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        return HistogramMetricFamily(
            "streamcrm_event_to_decision_seconds",
            "From the record's append time to its batch being applied and its outputs sent.",
            buckets=buckets,
            sum_value=s.latency_sum_s,
        )


def _service(tally: Tally) -> Iterator[Metric]:
    """Complaint SLAs (breaches, marketing held, answer-time histograms) and coupon-abuse
    flags. Answer times come as bucket counts (decisions/complaint_sla.py), so the
    histograms have no _sum: the exact seconds are not kept."""
    service = CounterMetricFamily(
        "streamcrm_service_outcomes",
        "Complaints, SLA breaches, marketing held by open complaints, coupon-abuse flags.",
        labels=["outcome"],
    )
    for name in SERVICE_OUTCOMES:
        service.add_metric([name], tally[name])
    yield service
    for sla in complaint_sla.SLAS:
        cumulative, buckets = 0, []
        for bound in complaint_sla.BUCKETS_H:
            cumulative += tally[complaint_sla.bucket_name(sla, bound)]
            buckets.append(("+Inf" if bound is None else repr(bound * 3600.0), cumulative))
        yield HistogramMetricFamily(
            f"streamcrm_complaint_{sla}_seconds",
            f"From a complaint's opening to its {sla.replace('_', ' ')} (bucketed).",
            buckets=buckets,
        )


def render(collector: WorkerCollector) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)


def _lift(readout: dict[str, Any]) -> Iterator[GaugeMetricFamily]:
    """The lift readout (experiments/lift.py lift_from_rows) as gauges, by unit and arm."""
    arms = GaugeMetricFamily(
        "streamcrm_lift_arm", "Resolved abandoned carts per arm: carts, recovered, revenue, "
        "coupons sent, coupon cost.", labels=["unit", "arm", "figure"],
    )  # fmt: skip
    diff = GaugeMetricFamily(
        "streamcrm_lift_difference", "Treatment minus holdout with its 95% interval.",
        labels=["unit", "figure", "bound"],
    )  # fmt: skip
    for unit in ("customer", "cart"):
        part = readout.get(unit) or {}
        for arm in ("treatment", "holdout"):
            for figure in ("carts_abandoned", "recovered", "revenue", "coupons_sent", "coupon_cost"):
                value = (part.get(arm) or {}).get(figure)
                if value is not None:
                    arms.add_metric([unit, arm, figure], float(value))
        for figure, interval in (part.get("difference") or {}).items():
            for bound, key in (("estimate", "estimate"), ("low", "ci_low"), ("high", "ci_high")):
                diff.add_metric([unit, figure, bound], float(interval[key]))
    yield arms
    yield diff
