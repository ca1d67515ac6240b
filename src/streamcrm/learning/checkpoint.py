"""Learner checkpoints: the population models as bytes, and how far each has learned.

Workers checkpoint their learners (RFM quantiles, churn model, offer ranker, candidate
statistics) into a changelog-backed table under each partition they own; a worker that
restarts or takes a partition over adopts the most advanced checkpoint it finds, so
learning continues instead of starting over. Pickle, because River models are built for
it; the bytes only ever travel through this deployment's own internal topic.

>>> from streamcrm.decisions import Learners
>>> learners = Learners()
>>> learners.ranker.learn_one({"bias": 1.0}, True)
>>> restored = load(dump(learners))
>>> progress(restored), restored.ranker.version
(1, 'ranker-v1.1')
"""

from __future__ import annotations

import pickle
import zlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streamcrm.decisions import Learners

VERSION = b"learners-v1:"


def dump(learners: Learners) -> bytes:
    return VERSION + zlib.compress(pickle.dumps(learners, protocol=pickle.HIGHEST_PROTOCOL), 6)


def load(blob: bytes) -> Learners:
    if not blob.startswith(VERSION):
        msg = "not a learners-v1 checkpoint"
        raise ValueError(msg)
    learners: Learners = pickle.loads(zlib.decompress(blob[len(VERSION) :]))  # noqa: S301 - our own topic
    return learners


def progress(learners: Learners) -> int:
    """Labels and observations learned so far: the larger, the further along."""
    return (
        learners.ranker.labels
        + learners.churn.labels
        + learners.candidates.updates
        + learners.rfm.seen
    )
