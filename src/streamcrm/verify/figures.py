"""The figures ``streamcrm verify`` reports, from what the run left behind. Pure.

Inputs: the events published (every one valid, with a unique ``event_id``), the
customers table's changelog read from its start (every record, in offset order; one
customer lives on one partition, so its records are in write order), every record of
the four output topics, the Redis hashes, and the pure core's run on the same events
(:mod:`streamcrm.verify.reference`).

**Which events the table applied.** A ``CustomerState`` carries ``events_applied`` (how
many events it has applied since the customer's first) and ``seen_event_ids`` (the ids of
the last ``min(events_applied, dedupe window)`` of them, oldest first). Each changelog
record is the state after one batch, so walking a customer's records in order rebuilds
the full list of event ids its state has applied: a record with count ``a`` and window
``w`` says "the first ``a - len(w)`` ids of the previous list, then ``w``". This covers
a state that moved on (the list grows), one that was set back (an older or stale state
written over a newer one: the list is cut back to what that state has applied) and one
that took another path. Only the last record counts: an event applied by a state that
was later overwritten is not applied. If one step added more ids than the window holds
(more events of one customer in one batch than ``dedupe window``) or records are missing
(a compacted changelog), the customer's ids are incomplete; it is then counted from
``events_applied`` alone and listed in ``lineage_gaps``.

- ``events_published``: events acknowledged by the broker to the publisher.
- ``events_applied``: published events that some customer's final state has applied
  (distinct ids).
- ``events_lost``: published events that no final state has applied
  (``events_published - events_applied``).
- ``events_applied_twice``: extra applications: for each event, the times it appears in
  its customer's final list, minus one.
- ``duplicate_output_ids``: records on the output topics (dead letters, coupons, offers,
  profile updates) whose ``event_id`` an earlier record of the same topic already had;
  by topic in ``duplicate_output_ids_by_topic``. Same-id redeliveries are allowed by the
  at-least-once contract (consumers dedupe by id); this is how many they must drop.
- ``duplicate_coupons``: abandoned-cart messages (the coupons topic: reminders and
  coupons) beyond one per abandonment: for each (customer, cart, stage), the distinct
  coupon ids the workers published minus the distinct ids the pure core issued for it
  (at least one); plus, for each coupon id, its distinct bodies minus one.
- ``wrong_coupons``: distinct coupon ids for a cart whose ``order_placed`` event time is
  before the message's ``ts`` (its stage's due time): the storefront says the cart was
  bought before the deadline, so no message was due. (The workload is stamped in the
  past, so "published before the deadline" is read on the storefront's clock.)
- ``snapshots_stale``: customers of the final table whose Redis hash is missing or
  differs from :func:`streamcrm.snapshot.snapshot_fields` of their final state in any
  field but ``updated_at``.
- ``recovery_s_max``: the longest recovery of the run (each in ``recoveries``): from the
  fault (the signal sent, the worker started) until every input partition is owned by a
  live worker that has processed it up to the end offset acknowledged to the publisher
  when the fault happened (:mod:`streamcrm.verify.cluster`). It includes the group's
  rejoin, the table's restore, and catching up with what arrived meanwhile.
- ``worker_crashes`` (extra): workers that exited without being told to (restarted, as
  an orchestrator would), with the last error line of their log.
- ``states_differ_from_core`` (extra): customers whose final state differs from the pure
  core's in what events alone decide (order count, spend, cart id, lines and version,
  consent, events applied).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from streamcrm import state_codec
from streamcrm.events import parse_ts
from streamcrm.snapshot import snapshot_fields
from streamcrm.state import CustomerState
from streamcrm.verify.workload import PublishedEvent


@dataclass(slots=True)
class Lineage:
    """The event ids a customer's state has applied, oldest first (None: not known)."""

    ids: list[str | None] = field(default_factory=list)
    final: CustomerState | None = None

    def step(self, state: CustomerState | None) -> None:
        self.final = state
        if state is None:  # deleted: nothing applied any more
            self.ids = []
            return
        window = list(state.seen_event_ids)
        kept = state.events_applied - len(window)
        prefix = self.ids[:kept]
        prefix += [None] * (kept - len(prefix))
        self.ids = [*prefix, *window]

    @property
    def complete(self) -> bool:
        return self.final is None or (
            None not in self.ids and len(self.ids) == self.final.events_applied
        )


def lineages(changelog: Iterable[tuple[str, bytes | None]]) -> dict[str, Lineage]:
    """Replay the changelog records (key, value) in order into one lineage per customer."""
    out: dict[str, Lineage] = {}
    for key, value in changelog:
        state = None if value is None else state_codec.decode(value)
        out.setdefault(key, Lineage()).step(state)
    return out


def application_figures(
    published: Sequence[PublishedEvent], lines: Mapping[str, Lineage]
) -> dict[str, Any]:
    by_customer: dict[str, set[str]] = defaultdict(set)
    for event in published:
        by_customer[event.customer_id].add(event.event_id)
    applied = twice = 0
    gaps: list[str] = []
    faulty: list[str] = []  # customers with a lost or twice-applied event, for the report
    for customer_id, ids in by_customer.items():
        line = lines.get(customer_id, Lineage())
        if line.complete:
            counts = Counter(i for i in line.ids if i in ids)
            applied += len(counts)
            twice += sum(n - 1 for n in counts.values())
            if len(counts) < len(ids) or any(n > 1 for n in counts.values()):
                faulty.append(customer_id)
            continue
        gaps.append(customer_id)
        total = line.final.events_applied if line.final else 0
        if total != len(ids):
            faulty.append(customer_id)
        applied += min(total, len(ids))
        twice += max(total - len(ids), 0)
    n = len(published)
    return {
        "events_published": n,
        "events_applied": applied,
        "events_lost": n - applied,
        "events_applied_twice": twice,
        "lineage_gaps": len(gaps),
        "customers_with_lost_or_twice": sorted(faulty)[:10],
    }


def duplicate_ids(outputs: Mapping[str, Sequence[dict[str, Any]]]) -> dict[str, Any]:
    by_topic = {
        name: len(bodies) - len({b.get("event_id") for b in bodies})
        for name, bodies in outputs.items()
    }
    return {
        "duplicate_output_ids": sum(by_topic.values()),
        "duplicate_output_ids_by_topic": by_topic,
    }


def _abandonment(coupon: dict[str, Any]) -> tuple[str, str, str]:
    return (coupon["customer_id"], coupon["cart"]["cart_id"], coupon["stage"])


def duplicate_coupons(
    coupons: Sequence[dict[str, Any]], core_coupons: Sequence[dict[str, Any]]
) -> int:
    return len(duplicate_coupon_ids(coupons, core_coupons))


def duplicate_coupon_ids(
    coupons: Sequence[dict[str, Any]], core_coupons: Sequence[dict[str, Any]]
) -> list[str]:
    """The coupon ids counted by ``duplicate_coupons`` (one entry per extra id or body)."""
    ids: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    core: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    bodies: dict[str, set[bytes]] = defaultdict(set)
    for coupon in coupons:
        ids[_abandonment(coupon)].add(coupon["coupon_id"])
        bodies[coupon["coupon_id"]].add(orjson.dumps(coupon, option=orjson.OPT_SORT_KEYS))
    for coupon in core_coupons:
        core[_abandonment(coupon)].add(coupon["coupon_id"])
    extra: list[str] = []
    for key, found in ids.items():
        if len(found) > max(len(core[key]), 1):
            extra += sorted(found - core[key])[: len(found) - max(len(core[key]), 1)]
    return extra + [cid for cid, v in bodies.items() for _ in range(len(v) - 1)]


def wrong_coupons(coupons: Sequence[dict[str, Any]], published: Sequence[PublishedEvent]) -> int:
    ordered_at: dict[str, float] = {}
    for event in published:
        if event.type == "order_placed" and event.cart_id:
            ordered_at[event.cart_id] = min(ordered_at.get(event.cart_id, event.ts), event.ts)
    wrong = {
        c["coupon_id"]
        for c in coupons
        if c["cart"]["cart_id"] in ordered_at
        and ordered_at[c["cart"]["cart_id"]] < parse_ts(c["ts"])
    }
    return len(wrong)


def stale_snapshots(
    states: Mapping[str, CustomerState], hashes: Mapping[str, dict[str, str]]
) -> int:
    stale = 0
    for customer_id, state in states.items():
        want = snapshot_fields(state, 0.0)
        got = hashes.get(customer_id) or {}
        if any(got.get(k) != v for k, v in want.items() if k != "updated_at"):
            stale += 1
    return stale


def _event_facts(state: CustomerState) -> tuple[Any, ...]:
    cart = state.cart
    return (
        state.order_count,
        round(state.total_spend, 2),
        state.consent,
        state.events_applied,
        (cart.cart_id, cart.version, cart.lines) if cart else None,
    )


def states_differ(states: Mapping[str, CustomerState], core: Mapping[str, CustomerState]) -> int:
    customers = set(states) | set(core)
    return sum(
        1
        for c in customers
        if (c not in states or c not in core or _event_facts(states[c]) != _event_facts(core[c]))
    )
