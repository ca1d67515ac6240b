"""What the processor takes in (:class:`Record`) and what a batch gives back
(:class:`BatchResult`): changed states, every emitted event grouped by type (its topic:
:data:`streamcrm.protocol.TOPIC_OF`), counts and the decision log. Pure data."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from streamcrm import erasure
from streamcrm.protocol import TOPIC_OF, Step
from streamcrm.state import CustomerState

Keyed = list[tuple[bytes | None, dict[str, Any]]]  # (Kafka key, event body), in order


@dataclass(frozen=True, slots=True)
class Record:
    """A Kafka record as the shell received it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    # Set on an end-of-stream control record: the log's final event time (no event).
    end_of_stream: float | None = None


def _by_type() -> dict[str, Keyed]:
    return {event_type: [] for event_type in TOPIC_OF}


@dataclass(slots=True)
class BatchResult:
    """What a batch changed. ``states`` holds only customers whose state changed;
    ``emitted`` every output event by type (``coupons``, ``offers``, ... are views of it)."""

    states: dict[str, tuple[int, CustomerState]] = field(default_factory=dict)
    emitted: dict[str, Keyed] = field(default_factory=_by_type)
    decisions: list[dict[str, Any]] = field(default_factory=list)  # audit log, inputs included
    applied: Counter[str] = field(default_factory=Counter)  # by event type
    outcomes: Counter[str] = field(default_factory=Counter)  # names: streamcrm.outcomes
    duplicates: int = 0
    received: Counter[str] = field(default_factory=Counter)  # by topic
    dead_by_reason: Counter[str] = field(default_factory=Counter)
    max_event_ts: float | None = None
    # Deadlines whose firing raised: (customer_id, "Type: message"); the customer's
    # deadline is dropped until its next event, so one bad state cannot spin the sweep.
    timer_errors: list[tuple[str, str]] = field(default_factory=list)
    # Customers forgotten in this batch (written before ``states``: a later event of the
    # same id in the batch is a new customer); their receipts are emitted ``customer_erased``.
    erasures: dict[str, tuple[int, erasure.Marker]] = field(default_factory=dict)
    # Per evaluated offer: (customer_id, its outcomes), for customer-clustered intervals.
    evaluations: list[tuple[str, list[str]]] = field(default_factory=list)

    @property
    def dead_letters(self) -> Keyed:
        return self.emitted["dead_letter"]

    @property
    def coupons(self) -> Keyed:
        return self.emitted["coupon_issued"]

    @property
    def offers(self) -> Keyed:
        return self.emitted["next_best_offer"]

    @property
    def profile_events(self) -> Keyed:
        return self.emitted["customer_profile_updated"]

    @property
    def receipts(self) -> Keyed:
        return self.emitted["customer_erased"]

    def take(self, customer_id: str, step: Step) -> None:
        """Add what a customer's decisions emitted, counted and logged (not its state)."""
        # Most events emit nothing: skip the empty parts (a generator each was measurable).
        if step.emitted:
            key = customer_id.encode()
            emitted = self.emitted
            for e in step.emitted:
                emitted[e.type].append((key, e.body))
        if step.outcomes:
            self.outcomes.update(step.outcomes)
        if step.audit:
            self.decisions.extend(step.audit)
        if step.evaluations:
            self.evaluations.extend((customer_id, hits) for hits in step.evaluations)

    def outputs(self) -> Iterator[tuple[str, bytes | None, dict[str, Any]]]:
        """Every output event as (its schema's type, key, body), e.g. to validate them all."""
        for event_type, records in self.emitted.items():
            for key, body in records:
                yield event_type, key, body


Lookup = Callable[[str], CustomerState | None]
Owned = Callable[[int], bool]
Horizon = Callable[[int], float]  # partition -> time up to which all its inputs were read
Erased = Callable[[str], erasure.Marker | None]  # the erasure marker of a forgotten customer
