"""What a learner checkpoint must add when sharing is on, so a handover neither re-sends
nor re-merges the model. Pure.

A checkpoint's model is exactly the deltas ``seen`` lists (every sender's, this worker's
own included: :meth:`Peer.export` records its own sequence, and the checkpoint exports
what is pending first), and ``offset`` is where the learning topic was read up to. A
worker adopting it sets its learners to the model, its ``seen`` to the record's, reads the
topic again from ``offset`` (merging what is not in ``seen``, its own deltas of before
included: those are not in the adopted model) and sends from then on under a new sender
id, with its export baseline at the adopted state (:func:`baseline`): nothing is sent or
merged twice. The record sits next to the model record (``<partition>/sharing``) and
names the model's digest: a record of another model (a crash between the two writes) is
ignored, and the worker then reads on from the topic's end (logged: deltas since the
checkpoint are lost, never doubled).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from streamcrm.learning.river_state import BadState, integer, text
from streamcrm.sharing.kll import KLL
from streamcrm.sharing.learners import PARTS, LearnerSet

VERSION = 1
RFM_DIMS = ("r", "f", "m")


@dataclass(frozen=True, slots=True)
class Resume:
    offset: int
    seen: dict[str, int]
    rfm: dict[str, Any] | None  # the population RFM sketches (not in the model record)


def digest(model: bytes) -> str:
    return hashlib.blake2b(model, digest_size=16).hexdigest()


def record(model: bytes, offset: int, seen: dict[str, int], rfm: Any) -> bytes:
    """The sharing record written next to ``model``."""
    sketch = getattr(rfm, "_sketch", None)  # RFMScorer keeps its population sketch private
    sketches = None if sketch is None else {d: sketch[d].to_data() for d in RFM_DIMS}
    return orjson.dumps(
        {"v": VERSION, "model": digest(model), "offset": offset, "seen": seen, "rfm": sketches}
    )


def resume(blob: bytes | None, model: bytes) -> Resume | None:
    """The record's resume point if it belongs to ``model``; None if there is none or it
    belongs to another model. :class:`BadState` if it is not a sharing record."""
    if blob is None:
        return None
    try:
        data = orjson.loads(blob)
    except orjson.JSONDecodeError as exc:
        raise BadState("sharing record: not JSON") from exc
    if not isinstance(data, dict) or data.get("v") != VERSION:
        raise BadState("sharing record: not a version-1 object")
    if data.get("model") != digest(model):
        return None
    seen_data = data.get("seen")
    if not isinstance(seen_data, dict):
        raise BadState("sharing record: seen is not an object")
    seen = {text(k, "sender", 200): integer(v, "sequence") for k, v in seen_data.items()}
    rfm = data.get("rfm")
    if rfm is not None:
        rfm = {d: KLL.from_data(rfm.get(d) if isinstance(rfm, dict) else None) for d in RFM_DIMS}
    return Resume(integer(data.get("offset"), "offset"), seen, rfm)


def baseline(learners: LearnerSet, rfm_sketch: dict[str, KLL] | None = None) -> None:
    """Count everything the learners hold as sent: the next export carries only what is
    learned from now on (not the adopted model). ``rfm_sketch``: the population sketch
    the checkpoint recorded (the model record has only the RFM scorer's own quantiles)."""
    rfm = learners.rfm
    if rfm_sketch is not None:
        rfm._sketch = rfm_sketch
        rfm._outbox = {d: KLL(sketch.k) for d, sketch in rfm_sketch.items()}
        rfm._cuts_at = -1
    for name in PARTS:
        getattr(learners, name).export_delta()
