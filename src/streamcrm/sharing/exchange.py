"""When workers exchange deltas, over a transport, and what it cost. Pure (event time in).

Every ``every_s`` of event time each worker exports what it learned since its last
export and publishes it; each worker then merges every delta the transport delivers
(others' only). With the in-memory transport a delta arrives ``delay_s`` after it was
published, so an interaction reaches the other workers at most ``every_s + delay_s``
(plus one replay batch) after it happened; :attr:`Exchange.delays` measures it per
interaction (the delivery time minus the interaction's event time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka.partitioner import murmur2

from streamcrm.learning.river_state import BadState
from streamcrm.replay.flags import DEFAULT_EVERY_S
from streamcrm.sharing.learners import LearnerSet, Peer, start


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` (murmur2, made positive)."""
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


def worker_for(partition: int, workers: int) -> int:
    """Partitions spread round-robin over the workers (as Faust's assignor does when all
    members subscribe to the same topics)."""
    return partition % workers


class Transport(Protocol):
    def publish(self, delta: dict[str, Any], now: float) -> None: ...
    def due(self, now: float) -> list[Any]: ...


@dataclass(slots=True)
class Exchange:
    transport: Transport
    every_s: float = DEFAULT_EVERY_S
    peers: list[Peer] = field(default_factory=list)
    next_at: float | None = None
    rejected: int = 0
    # Per worker: (count, sum of event times) of interactions not yet exported.
    pending: list[list[float]] = field(default_factory=list)
    # Exported interactions not yet delivered: (count, sum of times, earliest, arrives at).
    in_flight: list[tuple[float, float, float, float]] = field(default_factory=list)
    delay_n: float = 0.0
    delay_sum: float = 0.0
    delay_max: float = 0.0

    @classmethod
    def between(
        cls, learners: Sequence[LearnerSet], transport: Transport, every_s: float
    ) -> Exchange:
        for learner_set in learners:
            start(learner_set)
        peers = [Peer(f"worker-{i}") for i in range(len(learners))]
        return cls(transport, every_s, peers, pending=[[0.0, 0.0, float("inf")] for _ in peers])

    def saw(self, worker: int, ts: float) -> None:
        """One input event on ``worker`` (for the delay figures)."""
        p = self.pending[worker]
        p[0] += 1
        p[1] += ts
        p[2] = min(p[2], ts)

    def tick(self, learners: Sequence[LearnerSet], now: float) -> None:
        """Export and publish if an exchange is due, then merge whatever has arrived."""
        if self.next_at is None:
            self.next_at = now + self.every_s
        if now >= self.next_at:
            self.next_at = now + self.every_s
            for i, (peer, learner_set) in enumerate(zip(self.peers, learners, strict=True)):
                delta = peer.export(learner_set)
                if delta is not None:
                    self.transport.publish(delta, now)
                n, total, first = self.pending[i]
                if n:
                    arrives = now + getattr(self.transport, "delay_s", 0.0)
                    self.in_flight.append((n, total, first, arrives))
                self.pending[i] = [0.0, 0.0, float("inf")]
        delivered = self.transport.due(now)
        for delta in delivered:
            for peer, learner_set in zip(self.peers, learners, strict=True):
                try:
                    peer.merge(learner_set, delta)
                except BadState:
                    self.rejected += 1
        if delivered:
            self._delivered(now)

    def _delivered(self, now: float) -> None:
        still = []
        for n, total, first, arrives in self.in_flight:
            if arrives > now:
                still.append((n, total, first, arrives))
                continue
            self.delay_n += n
            self.delay_sum += n * now - total
            self.delay_max = max(self.delay_max, now - first)
        self.in_flight = still

    def summary(self, events: int) -> dict[str, Any]:
        """Traffic: bytes published (each is read by every other worker too)."""
        sent = getattr(self.transport, "bytes", 0)
        readers = max(len(self.peers) - 1, 0)
        return {
            "every_s": self.every_s,
            "delay_s": getattr(self.transport, "delay_s", None),
            "deltas_published": getattr(self.transport, "messages", 0),
            "delta_bytes": sent,
            "delta_bytes_per_event": round(sent / events, 1) if events else None,
            "delta_bytes_read_per_event": round(sent * readers / events, 1) if events else None,
            "deltas_rejected": self.rejected,
            "interaction_to_peers_delay_s": {
                "mean": round(self.delay_sum / self.delay_n, 1) if self.delay_n else None,
                "max": round(self.delay_max, 1) if self.delay_n else None,
            },
        }
