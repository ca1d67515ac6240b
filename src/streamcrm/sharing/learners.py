"""One worker's population learners as one delta, and the merge of another's. Pure.

What each learner sends (details in each module):

- RFM: KLL sketches of the values it scored since the last export (merged into one
  population sketch per dimension);
- candidate statistics: per-SKU popularity, count, catalogue and co-occurrence deltas;
- offer ranker and churn model: the change of their weights and scaler statistics
  (summed, so the shared model takes every worker's SGD steps);
- offer gate: the informative moments' counts (folded in as that many fading steps).

A delta is plain data (orjson-serialisable) tagged with its format version, its sender
and a sequence number; a receiver skips its own and any it has merged already, so a
transport may redeliver.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from streamcrm.learning.river_state import BadState, integer, text

# 2: candidate links sent forward only, neighbours flat (sku_deltas.py). A worker
# rejects another version whole, before any part is merged (a rolling upgrade shares
# nothing between old and new workers until all run the new version).
VERSION = 2
PARTS = ("rfm", "candidates", "ranker", "churn", "gate")


class Shareable(Protocol):
    def export_delta(self) -> Any: ...  # None: nothing learned since the last export
    def merge_delta(self, delta: Any) -> None: ...


class LearnerSet(Protocol):  # the decision code's Learners (or its successor)
    rfm: Any
    candidates: Any
    ranker: Any
    churn: Any
    gate: Any


def start(learners: LearnerSet) -> None:
    """Record what is learned from now on (the learners that need an outbox to do so)."""
    learners.rfm.share()
    learners.candidates.share()


@dataclass(slots=True)
class Peer:
    """A worker's side of the sharing: its id, its sequence, the last seq seen per sender."""

    worker: str
    seq: int = 0
    seen: dict[str, int] = field(default_factory=dict)
    merged: int = 0

    def export(self, learners: LearnerSet) -> dict[str, Any] | None:
        """Everything learned here since the last export; None if nothing was (a part
        that learned nothing is null)."""
        parts = {name: getattr(learners, name).export_delta() for name in PARTS}
        if all(part is None for part in parts.values()):
            return None
        self.seq += 1
        self.seen[self.worker] = self.seq  # included here: a checkpoint records it (handover.py)
        return {"v": VERSION, "worker": self.worker, "seq": self.seq, **parts}

    def merge(self, learners: LearnerSet, delta: Any) -> bool:
        """Merge one delta; False if it was ours or merged already. :class:`BadState` if
        it is not what :meth:`export` writes (each part is checked as it is merged, so a
        bad part leaves the parts before it merged: the caller counts and skips it)."""
        if not isinstance(delta, dict) or delta.get("v") != VERSION:
            raise BadState(f"learner delta: not a version-{VERSION} object")
        sender = text(delta.get("worker"), "sender", 200)
        seq = integer(delta.get("seq"), "sequence")
        if sender == self.worker or seq <= self.seen.get(sender, 0):
            return False
        for name in PARTS:
            getattr(learners, name).merge_delta(delta.get(name))
        self.seen[sender] = seq
        self.merged += 1
        return True
