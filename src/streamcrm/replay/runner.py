"""Replay mapped records through :class:`~streamcrm.ingest.Processor` on event time. Pure.

The same decision code as the worker, with the table in a dict and one partition:
deadlines fire as the watermark (the largest event time so far) passes them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamcrm.decisions import CrmConfig
from streamcrm.erasure import Marker
from streamcrm.events import Event
from streamcrm.experiments.lift import lift_from_rows
from streamcrm.ingest import BatchResult, Processor, Record
from streamcrm.outcomes import Tally
from streamcrm.policies.cart_resolution import KIND as RESOLVED
from streamcrm.pricing.table import SkuTable
from streamcrm.profiles_summary import BASELINES, hit_rates, profile_distribution
from streamcrm.replay.adapters import Mapped
from streamcrm.replay.evaluation import auc_ci, exact_auc, offer_ci, ratio_ci
from streamcrm.sharing.exchange import Exchange, partition_for, worker_for
from streamcrm.sharing.memory import MemoryTransport
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
    offer_rewards: int = 0  # offer_reward events (off-policy evaluation)
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
    cluster: dict[str, Any] = field(default_factory=dict)  # workers, partitions, sharing
    resolved: list[dict[str, Any]] = field(default_factory=list)  # cart_resolved, per cart
    # Price suggestions: one owner of every SKU, the pure core run per event (pricing/).
    price_suggestions: list[dict[str, Any]] = field(default_factory=list)
    pricing: dict[str, Any] | None = None

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
            "flash_sale_notifications": sum(o.family("flash_notice_").values())
            - o["flash_notice_expired"],
            "offers_emitted": len(self.offers),
            "offer_rewards": self.offer_rewards,
            **offer_summary(self.outcomes, self.evaluations),
            "offer_ranker": self.ranker,
            "cluster": self.cluster,
            "price_suggestions": len(self.price_suggestions),
            "pricing": self.pricing,
            "segment_shares": segment_shares(self.profiles.get("segments", {}), self.customers),
            "lift": lift_from_rows(self.resolved),
        }


def segment_shares(segments: dict[str, int], customers: int) -> dict[str, float]:
    """Each RFM segment's share of all customers (the others have not ordered yet)."""
    return {k: round(v / customers, 4) for k, v in segments.items()} if customers else {}


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


@dataclass(frozen=True, slots=True)
class Workers:
    """The simulated cluster: ``count`` workers, each its own :class:`Processor`, customers
    split as Kafka splits keys over ``partitions``; ``share_every_s`` None: each learns
    alone (today's worker), else they exchange deltas every that much event time, each
    delivered ``share_delay_s`` later (:mod:`streamcrm.sharing`)."""

    count: int = 1
    partitions: int = 8
    share_every_s: float | None = None
    share_delay_s: float = 0.0


def replay(
    mapped: Sequence[Mapped],
    *,
    crm: CrmConfig,
    batch_size: int = 50,
    progress: Callable[[int, int], None] | None = None,
    decisions: Callable[[list[dict[str, Any]]], None] | None = None,
    workers: Workers = Workers(),
    campaigns: Sequence[tuple[bytes, bytes]] = (),
    pricing: bool = True,
) -> ReplayOutcome:
    """``decisions``: called per batch with every offer, coupon and profile event it
    emitted, in event-time order (ties: coupons, offers, profile events). With several
    ``workers`` a batch's events go to their workers in log order, then deltas move.
    ``campaigns``: (key, value) records of the broadcast campaigns topic, every worker's;
    each is fanned out as the event time passes its announcement."""
    processors = [Processor(KINDS, crm=crm, clock="event") for _ in range(workers.count)]
    for processor in processors:
        processor.learners.churn.history = []  # every label, for the exact AUC and baselines
    exchange = None
    if workers.share_every_s is not None:
        transport = MemoryTransport(delay_s=workers.share_delay_s)
        learner_sets = [p.learners for p in processors]
        exchange = Exchange.between(learner_sets, transport, workers.share_every_s)
    sim = _Cluster(processors, workers, exchange, result=ReplayOutcome())
    for n, (key, value) in enumerate(campaigns):
        for w, processor in enumerate(processors):  # owned: dead-lettered once, by worker 0
            batch = processor.announce(Record("campaigns", 0, n, key, value), sim.table.get, 0.0)
            if w == 0:
                _absorb(sim.result, batch, sim.table, sim.markers, [], Counter())
    skus = _attach_pricing(processors, crm, sim.result) if pricing else None
    mapped = replay_order(mapped)
    if mapped and mapped[-1].ts - mapped[0].ts < 6 * 3600:
        sim.result.bucket_s = 300.0  # a short log: five-minute buckets keep the plots readable
    for start in range(0, len(mapped), batch_size):
        chunk = mapped[start : start + batch_size]
        for offset, piece, exchange_at in _pieces(chunk, exchange):
            sim.step(piece, start + offset, decisions)
            if exchange is not None and exchange_at is not None:
                exchange.tick([p.learners for p in processors], exchange_at)
        if progress is not None:
            progress(sim.result.events, len(mapped))
    _finish(sim.result, processors, sim.table, workers, exchange)
    if skus is not None:
        sim.result.pricing = pricing_summary(sim.result.price_suggestions, skus)
    return sim.result


def _attach_pricing(processors: Sequence[Processor], crm: CrmConfig, result: ReplayOutcome) -> SkuTable:
    """One SKU table for every simulated worker (one owner per SKU, as the worker's
    re-keying gives), fed each applied event."""
    table, cfg, out = SkuTable(crm.pricing.max_skus), crm.pricing, result.price_suggestions

    def observe(event: Event) -> None:
        out.extend(table.observe(event, cfg))

    for processor in processors:
        processor.on_applied = observe
    return table


def pricing_summary(suggestions: Sequence[dict[str, Any]], table: SkuTable) -> dict[str, Any]:
    directions = Counter(s["direction"] for s in suggestions)
    return {
        "up": directions["up"], "down": directions["down"],
        "skus": len({s["sku"] for s in suggestions}), "skus_tracked": len(table),
        "skus_evicted": table.evicted, "max_skus": table.capacity,
    }  # fmt: skip


def _pieces(
    chunk: Sequence[Mapped], exchange: Exchange | None
) -> Iterator[tuple[int, Sequence[Mapped], float | None]]:
    """The batch whole (sharing off), or cut where an exchange falls due: (offset, piece,
    the event time to exchange at after it). Lazy: each cut reads the next exchange time
    after the previous exchange."""
    if exchange is None:
        yield 0, chunk, None
        return
    begin = 0
    while begin < len(chunk):
        due = exchange.next_at
        end = begin + 1
        while end < len(chunk) and (due is None or chunk[end].ts < due):
            end += 1
        at = chunk[end].ts if end < len(chunk) else chunk[end - 1].ts
        yield begin, chunk[begin:end], at
        begin = end


@dataclass(slots=True)
class _Cluster:
    processors: list[Processor]
    workers: Workers
    exchange: Exchange | None
    result: ReplayOutcome
    table: dict[str, CustomerState] = field(default_factory=dict)
    markers: dict[str, Marker] = field(default_factory=dict)  # erased customers

    def step(
        self, piece: Sequence[Mapped], start: int,
        decisions: Callable[[list[dict[str, Any]]], None] | None,
    ) -> None:  # fmt: skip
        """One batch: each worker processes its customers' events in it, in log order."""
        now = max(m.ts for m in piece)
        emitted: list[dict[str, Any]] = []
        outcomes: Counter[str] = Counter()
        result, exchange = self.result, self.exchange
        for w, (records, times) in _route(piece, start, self.workers).items():
            batch = self.processors[w].process(
                records, self.table.get, now, erased=self.markers.get
            )
            result.events += len(records)
            _absorb(result, batch, self.table, self.markers, emitted, outcomes)
            if exchange is not None:
                for ts in times:
                    exchange.saw(w, ts)
        if decisions is not None:
            decisions(sorted(emitted, key=lambda e: e["ts"]))  # ISO UTC text sorts as time
        _timeline(result, piece, now, outcomes)


def _route(
    chunk: Sequence[Mapped], start: int, workers: Workers
) -> dict[int, tuple[list[Record], list[float]]]:
    """Each record (and its event time) to its customer's worker. All to one: exactly
    the one-worker replay (one timer index per worker, as the replay always had)."""
    out: dict[int, tuple[list[Record], list[float]]] = {}
    for i, m in enumerate(chunk):
        w = 0
        if workers.count > 1:
            w = worker_for(partition_for(m.key, workers.partitions), workers.count)
        records, times = out.setdefault(w, ([], []))
        records.append(Record(m.topic_kind, 0, start + i, m.key, m.value))
        times.append(m.ts)
    return out


def _absorb(
    result: ReplayOutcome, batch: BatchResult, table: dict[str, CustomerState],
    markers: dict[str, Marker], emitted: list[dict[str, Any]], outcomes: Counter[str],
) -> None:  # fmt: skip
    for customer_id, (_, marker) in batch.erasures.items():  # before states: see BatchResult
        table.pop(customer_id, None)
        markers[customer_id] = marker
    for customer_id, (_, state) in batch.states.items():
        table[customer_id] = state
    result.applied += sum(batch.applied.values())
    result.dead_letters += len(batch.dead_letters)
    result.duplicates += batch.duplicates
    result.outcomes.update(batch.outcomes)
    outcomes.update(batch.outcomes)
    outcomes["coupons_issued"] += len(batch.coupons)
    result.coupons.extend(coupon for _, coupon in batch.coupons)
    result.offers.extend(offer for _, offer in batch.offers)
    result.profile_events += len(batch.profile_events)
    rewards = batch.emitted["offer_reward"]
    result.offer_rewards += len(rewards)
    emitted.extend(e for _, e in (*batch.coupons, *batch.offers, *rewards, *batch.profile_events))
    for customer_id, hits in batch.evaluations:
        result.evaluations.setdefault(customer_id, []).append(hits)
    result.resolved.extend(d for d in batch.decisions if d.get("kind") == RESOLVED)


def _timeline(
    result: ReplayOutcome, chunk: Sequence[Mapped], now: float, outcomes: Counter[str]
) -> None:
    bucket_s = result.bucket_s
    for m in chunk:
        result.timeline.setdefault(m.ts - m.ts % bucket_s, Counter())["events"] += 1
    # Outcomes are counted per batch (small batches keep the hour right).
    result.timeline.setdefault(now - now % bucket_s, Counter()).update(outcomes)


def _finish(
    result: ReplayOutcome, processors: Sequence[Processor], table: dict[str, CustomerState],
    workers: Workers, exchange: Exchange | None,
) -> None:  # fmt: skip
    result.customers = len(table)
    result.timers_pending = sum(p.pending_timers() for p in processors)
    result.profiles = profile_distribution(table.values())
    churn = [p.learners.churn for p in processors]
    # The progressive AUC is each worker's own; with several, the exact AUC (over every
    # worker's labels, below) is the figure.
    result.churn_auc = churn[0].progressive_auc() if len(churn) == 1 else None
    result.churn_labels = sum(c.labels for c in churn)
    result.churn = churn_summary([h for c in churn for h in c.history or []])
    learners = processors[0].learners  # with sharing: every worker's model; without: one's
    result.ranker = {
        "version": learners.ranker.version, "weights": learners.ranker.weights(),
        "intercept": round(float(learners.ranker.lr.intercept), 4),
        "gate": learners.gate.as_dict(), "serving": "model" if learners.gate.use_model else "fallback",
        "exposure": learners.ranker.exposure.summary(),
        "choices_learned": Tally(result.outcomes)["choice_learned"],
        "choices_target_not_candidate": Tally(result.outcomes)["choice_target_not_candidate"],
    }  # fmt: skip
    result.cluster = {
        "workers": workers.count, "partitions": workers.partitions,
        "sharing": exchange.summary(result.events) if exchange is not None else None,
    }  # fmt: skip
