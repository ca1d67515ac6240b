"""Raw input records -> new customer states, emitted events, dead letters and counts.

The Faust agent hands each batch here with a lookup into the customer table and the
processing time; it writes back what comes out. Keeping the loop here (not in the
agent) is what lets the replay, the tests and the worker share one code path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from streamcrm import erasure
from streamcrm.decisions import CrmConfig, Learners, after_event, fire_due, flash_sale, next_due
from streamcrm.events import (
    DEFAULT_MAX_RECORD_BYTES,
    PROCESSING_ERROR,
    TS_OUT_OF_RANGE,
    Event,
    InvalidEvent,
    decode,
)
from streamcrm.ingest.batch import BatchResult, Erased, Horizon, Lookup, Owned, Record
from streamcrm.ingest.dead_letter import reject
from streamcrm.ingest.flash import FlashSales
from streamcrm.learning.candidates import CandidateStats
from streamcrm.learning.churn import ChurnModel
from streamcrm.learning.ranking import OfferRanker
from streamcrm.policies.abandoned_cart import AbandonConfig
from streamcrm.policies.contact import ContactConfig
from streamcrm.policies.flash_sale import Campaign, decode_announcement
from streamcrm.reorder import ReorderBuffer
from streamcrm.state import DEFAULT_LIMITS, CustomerState, Limits, apply, at_offset, replayed
from streamcrm.timers import DueIndex

# The inputs put in event-time order on the event clock. Not the service desk's: it may be
# silent for hours, and the buffer would hold every other event until it spoke.
_KIND_RANK = {"browse": 0, "cart": 1, "order": 2}
# The outcomes the processor counts itself (the decisions declare theirs).
OUTCOMES = frozenset({
    "cart_lines_dropped", "customer_erased", "erased_event_dropped", "timer_error",
    "flash_campaign_announced",  # a campaign (or a change to one) learnt from the broadcast
})  # fmt: skip


def _until(now: float, horizon: Horizon | None, partition: int) -> float:
    return now if horizon is None else min(now, horizon(partition))


class Processor:
    """The whole decision path of a worker, without I/O.

    It keeps only derived state: per-partition timer indexes (rebuilt from the table after
    a restart) and, on the event clock, watermarks and the reorder buffer.

    - ``clock="wall"``: deadlines fire at the ``now`` the shell passes (batches, sweeps).
    - ``clock="event"``: deadlines fire as event time passes them, between events, so a
      replay decides exactly as living through the log would. With ``reorder`` (the
      worker), each partition's events are first put in event-time order across the three
      input topics (:mod:`streamcrm.reorder`); an in-memory replay of a sorted log needs
      no reordering.

    No single record can stop it: a record that cannot be decoded, is too large, or is
    stamped outside years 1970-9999 (or, on the wall clock, more than
    ``max_future_skew_s`` ahead of ``now``) is dead-lettered with its reason; an event
    whose applying or deciding raises is dead-lettered as ``processing_error`` and its
    effects on the customer are discarded (state, outputs and deadline stay as before;
    a population learner may keep what it learned before the error).
    """

    def __init__(
        self,
        topic_kinds: Mapping[str, str],
        *,
        limits: Limits = DEFAULT_LIMITS,
        abandon: AbandonConfig | None = None,
        contact: ContactConfig | None = None,
        crm: CrmConfig | None = None,
        clock: str = "wall",
        reorder: bool = False,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        max_future_skew_s: float = 86_400.0,
        erasure_hold_s: float = erasure.DEFAULT_HOLD_S,
    ) -> None:
        if clock not in {"wall", "event"}:
            msg = f"clock must be 'wall' or 'event', not {clock!r}"
            raise ValueError(msg)
        self.topic_kinds = dict(topic_kinds)
        self.limits = limits
        self.crm = crm or CrmConfig(
            contact=contact or ContactConfig(), abandon=abandon or AbandonConfig()
        )
        self.learners = Learners(
            churn=ChurnModel(horizon_s=self.crm.churn_horizon_s),
            candidates=CandidateStats(max_skus=self.crm.tracked_skus),
            ranker=OfferRanker(epsilon=self.crm.offers.exploration),
        )
        self.clock = clock
        self.max_record_bytes = max_record_bytes
        self.max_future_skew_s = max_future_skew_s
        self.erasure_hold_s = erasure_hold_s
        self._erased: Erased | None = None  # the current process() call's marker lookup
        self.timers: dict[int, DueIndex] = {}
        self.watermarks: dict[int, float] = {}
        self.flash = FlashSales(self.crm.flash.interest_window_s)  # interest index, campaigns
        order = sorted(
            (t for t, kind in self.topic_kinds.items() if kind in _KIND_RANK),
            key=lambda t: _KIND_RANK[self.topic_kinds[t]],
        )
        self._ordered = frozenset(order)
        self.buffer = ReorderBuffer(order) if clock == "event" and reorder else None
        # Called with every event applied (not duplicates, not dead letters): the per-SKU
        # demand of price suggestions (pricing/deltas.py in the worker, the table in replays).
        self.on_applied: Callable[[Event], object] | None = None

    @property
    def watermark(self) -> float | None:
        return max(self.watermarks.values(), default=None)

    def pending_timers(self) -> int:
        return sum(len(index) for index in self.timers.values())

    def next_due(self) -> float | None:
        return min(
            (d for i in self.timers.values() if (d := i.next_due()) is not None), default=None
        )

    def process(
        self,
        records: Iterable[Record],
        lookup: Lookup,
        now: float,
        owned: Owned | None = None,
        *,
        horizon: Horizon | None = None,
        erased: Erased | None = None,
        limit: int | None = None,
    ) -> BatchResult:
        """Decode, validate and apply every record; invalid ones become dead-letter events.

        ``horizon`` (wall clock): how far every input topic has been read on a partition;
        its deadlines fire at ``min(now, horizon(partition))``, never on a partial view.
        ``limit`` (wall clock): fire at most this many deadlines (:meth:`sweep`).
        ``erased``: the markers of forgotten customers (:mod:`streamcrm.erasure`); their
        events from before the erasure are dropped.
        """
        self._erased = erased
        result = BatchResult()
        touched: set[int] = set()
        for record in records:
            if record.end_of_stream is not None:
                if self.buffer is not None:
                    self.buffer.close(record.topic, record.partition, record.end_of_stream)
                    touched.add(record.partition)
                continue
            result.received[record.topic] += 1
            try:
                event = self._decode(record, now)
            except InvalidEvent as error:
                reject(result, record, error, now)
                continue
            if self.buffer is not None:
                if record.topic in self._ordered:
                    self.buffer.push(record.topic, record.partition, event.ts, (event, record))
                    touched.add(record.partition)
                else:  # the service desk: applied as it arrives; it does not move time
                    self._apply(result, event, record, lookup, now)
                continue
            if self.clock == "event":
                # Sorted input, one watermark: every partition's deadlines move with it.
                for partition in {record.partition, *self.timers}:
                    self._advance(result, lookup, partition, event.ts, owned)
            self._apply(result, event, record, lookup, now)
        if self.buffer is not None:
            self._release(self.buffer, touched, result, lookup, now, owned)
        if self.clock == "wall":
            self._fire_all(result, lookup, now, owned, horizon, limit)
        return result

    def _release(
        self,
        buffer: ReorderBuffer,
        partitions: set[int],
        result: BatchResult,
        lookup: Lookup,
        now: float,
        owned: Owned | None,
    ) -> None:
        for partition in sorted(partitions):
            for ts, (event, record) in buffer.release(partition):
                self._advance(result, lookup, record.partition, ts, owned)
                self._apply(result, event, record, lookup, now)
            final = buffer.final_watermark(partition)
            if final is not None:
                self._advance(result, lookup, partition, final, owned)

    def buffered(self) -> int:
        return len(self.buffer) if self.buffer is not None else 0

    def sweep(
        self,
        lookup: Lookup,
        now: float,
        owned: Owned | None = None,
        *,
        horizon: Horizon | None = None,
        limit: int | None = None,
    ) -> BatchResult:
        """Wall clock: fire what is due at ``now`` (or the partition's horizon, if earlier);
        with ``limit``, at most that many deadlines, the partitions due earliest first (the
        rest fire at a later call: the shell keeps a burst from holding input back)."""
        result = BatchResult()
        self._fire_all(result, lookup, now, owned, horizon, limit)
        return result

    def _fire_all(
        self, result: BatchResult, lookup: Lookup, now: float, owned: Owned | None,
        horizon: Horizon | None, limit: int | None,
    ) -> None:  # fmt: skip
        partitions = list(self.timers)
        if limit is not None:
            inf = float("inf")
            partitions.sort(key=lambda p: inf if (d := self.timers[p].next_due()) is None else d)
        for partition in partitions:
            at = _until(now, horizon, partition)
            fired = self._fire(result, lookup, partition, at, owned, limit)
            if limit is not None and (limit := limit - fired) <= 0:
                return

    def rebuild(self, customers: Iterable[tuple[str, int, CustomerState]]) -> None:
        """Re-derive every pending deadline from (restored) table state."""
        self.timers = {}
        restored = []
        for customer_id, partition, state in customers:
            self._timers(partition).set(
                customer_id, partition=partition, due=next_due(state, self.crm)
            )
            restored.append((customer_id, partition, state))
        self.flash.rebuild(restored)

    def announce(
        self, record: Record, lookup: Lookup, now: float, owned: Owned | None = None
    ) -> BatchResult:
        """One record of the broadcast campaigns topic: remember the campaign and fan it
        out to the interested customers of the owned partitions (wall clock: at ``now``;
        event clock: on each partition once its watermark passes the announcement).
        A bad record is dead-lettered by the owner of the partition of its number."""
        result = BatchResult()
        try:
            campaign = decode_announcement(record.value, key=record.key)
        except InvalidEvent as error:
            if owned is None or owned(record.partition):
                reject(result, record, error, now)
            return result
        campaign = flash_sale.with_defaults(campaign, self.crm)
        if not self.flash.learn(campaign):
            return result
        result.outcomes["flash_campaign_announced"] += 1
        if self.clock == "wall":
            self._fan_out_all(result, lookup, [campaign], now, owned)
        else:
            for partition, mark in self.watermarks.items():
                if mark >= campaign.announced_at and (owned is None or owned(partition)):
                    for waiting in self.flash.waiting(partition, mark):
                        self._fan_out(
                            result, lookup, partition, waiting, max(mark, waiting.announced_at)
                        )
        return result

    def fan_out(
        self, lookup: Lookup, campaigns: Iterable[Campaign], now: float, owned: Owned | None = None
    ) -> BatchResult:
        """Wall clock: fan ``campaigns`` out again (after a recovery: the customers
        enrolled already are left as they are)."""
        result = BatchResult()
        self._fan_out_all(result, lookup, campaigns, now, owned)
        return result

    def _fan_out_all(
        self, result: BatchResult, lookup: Lookup, campaigns: Iterable[Campaign], now: float,
        owned: Owned | None = None,
    ) -> None:  # fmt: skip
        """Wall clock: enroll the owned partitions' interested customers in ``campaigns``."""
        for campaign in campaigns:
            for partition in sorted(self.flash.indexes):
                if owned is None or owned(partition):
                    self._fan_out(result, lookup, partition, campaign, now)

    def _fan_out(
        self, result: BatchResult, lookup: Lookup, partition: int, campaign: Campaign, at: float
    ) -> None:
        states = result.states
        index = self._timers(partition)
        for cid in self.flash.interested(partition, campaign, at):
            state = states[cid][1] if cid in states else lookup(cid)
            if state is None:
                continue
            try:
                step = flash_sale.enroll(state, campaign, at, self.crm)
                due = next_due(step.state, self.crm)
            except Exception as exc:  # noqa: BLE001 - one customer must never stop the fan-out
                result.timer_errors.append((cid, f"{type(exc).__name__}: {exc}"))
                result.outcomes["timer_error"] += 1
                continue
            if step.state is not state:
                states[cid] = (partition, step.state)
                index.set(cid, partition=partition, due=due)
            result.take(cid, step)

    def _timers(self, partition: int) -> DueIndex:
        index = self.timers.get(partition)
        if index is None:
            index = self.timers[partition] = DueIndex()
        return index

    def _decode(self, record: Record, now: float) -> Event:
        event = decode(
            record.value,
            topic_kind=self.topic_kinds[record.topic],
            key=record.key,
            max_bytes=self.max_record_bytes,
        )
        if self.clock == "wall" and event.ts > now + self.max_future_skew_s:
            ahead = event.ts - now
            raise InvalidEvent(
                TS_OUT_OF_RANGE,
                f"ts: {event.body['ts']!r} is {ahead:.0f} s ahead of the processing clock "
                f"(at most {self.max_future_skew_s:.0f} s allowed)",
                event.body,
            )
        return event

    def _apply(
        self, result: BatchResult, event: Event, record: Record, lookup: Lookup, now: float
    ) -> None:
        states = result.states
        cid = event.customer_id
        partition = record.partition
        # Wall clock: records are applied in offset order, so a position already passed is
        # a redelivery (the event clock's reorder buffer may apply a topic out of order).
        by_offset = self.clock == "wall"
        forgotten_now = cid in result.erasures  # the table still holds the old state
        current = states[cid][1] if cid in states else None if forgotten_now else lookup(cid)
        marker = result.erasures[cid][1] if forgotten_now else None
        if marker is None and self._erased is not None:
            marker = self._erased(cid)
        position = (record.topic, partition, record.offset) if by_offset else None
        if event.type == erasure.ERASURE_REQUESTED and erasure.needed(
            marker, current, event.ts, position
        ):
            self._erase(result, current, event, record, now)
            return
        if erasure.predates(marker, event.ts, position):
            # The erased customer's past (late on another topic, or redelivered): not
            # applied, so counted with the duplicates; the outcome tells them apart.
            result.duplicates += 1
            result.outcomes["erased_event_dropped"] += 1
            return
        if by_offset and replayed(current, record.topic, partition, record.offset):
            result.duplicates += 1
            return
        try:
            transition = apply(current, event, now, self.limits)
            if not transition.applied:
                result.duplicates += 1
                return
            step = after_event(current, transition.state, event, self.crm, self.learners)
            new = step.state
            if by_offset:
                new = at_offset(new, record.topic, partition, record.offset)
            due = next_due(new, self.crm)
        except Exception as exc:  # noqa: BLE001 - one event must never stop the stream
            detail = f"{event.type}: {type(exc).__name__}: {exc}"
            reject(result, record, InvalidEvent(PROCESSING_ERROR, detail, event.body), now)
            return
        states[cid] = (partition, new)
        self._timers(partition).set(cid, partition=partition, due=due)
        self.flash.record(partition, event)
        result.applied[event.type] += 1
        if self.on_applied is not None:
            self.on_applied(event)
        if transition.dropped_lines:
            result.outcomes["cart_lines_dropped"] += transition.dropped_lines
        result.take(cid, step)
        if result.max_event_ts is None or event.ts > result.max_event_ts:
            result.max_event_ts = event.ts

    def _erase(
        self, result: BatchResult, state: CustomerState | None, event: Event, record: Record,
        now: float,
    ) -> None:  # fmt: skip
        cid, partition = event.customer_id, record.partition
        marker, receipt = erasure.erase(
            state, event, (record.topic, partition, record.offset), now, hold_s=self.erasure_hold_s,
            deadline_pending=state is not None and next_due(state, self.crm) is not None,
            offer_window_s=self.crm.offers.buy_window_s,
        )  # fmt: skip
        result.states.pop(cid, None)
        result.erasures[cid] = (partition, marker)
        result.receipts.append((cid.encode(), receipt))
        self._timers(partition).set(cid, partition=partition, due=None)
        self.flash.forget(partition, cid)
        result.applied[event.type] += 1
        result.outcomes["customer_erased"] += 1

    def _advance(
        self, result: BatchResult, lookup: Lookup, partition: int, ts: float, owned: Owned | None
    ) -> None:
        if ts > self.watermarks.get(partition, float("-inf")):
            self.watermarks[partition] = ts
            if self.flash.campaigns:
                for campaign in self.flash.waiting(partition, ts):
                    self._fire(result, lookup, partition, campaign.announced_at, owned)
                    self._fan_out(result, lookup, partition, campaign, campaign.announced_at)
            self._fire(result, lookup, partition, ts, owned)

    def _fire(
        self, result: BatchResult, lookup: Lookup, partition: int, at: float, owned: Owned | None,
        limit: int | None = None,
    ) -> int:  # fmt: skip
        """Fire the partition's deadlines due by ``at`` (at most ``limit``); how many."""
        states = result.states
        index = self._timers(partition)
        due = index.pop_due(at, owned, limit)
        for cid, part in due:
            state = states[cid][1] if cid in states else lookup(cid)
            if state is None:
                continue
            try:
                step = fire_due(state, at, self.crm, self.learners)
                next_at = next_due(step.state, self.crm)
            except Exception as exc:  # noqa: BLE001 - one customer must never stop the sweep
                result.timer_errors.append((cid, f"{type(exc).__name__}: {exc}"))
                result.outcomes["timer_error"] += 1
                continue  # popped and not re-armed: the customer's next event re-arms it
            states[cid] = (part, step.state)
            index.set(cid, partition=part, due=next_at)
            result.take(cid, step)
        return len(due)


def process_batch(
    records: Iterable[Record],
    topic_kinds: Mapping[str, str],
    lookup: Lookup,
    now: float,
    limits: Limits = DEFAULT_LIMITS,
) -> BatchResult:
    """One batch through a fresh :class:`Processor` on the wall clock (no pending timers)."""
    return Processor(topic_kinds, limits=limits).process(records, lookup, now)
