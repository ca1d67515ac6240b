"""Where the learners' checkpoint records live in the ``learners`` table, and which to write.

Keys: ``<partition>/model`` and ``<partition>/sku/<sku>`` (see
:mod:`streamcrm.learning.checkpoint`). Each owned partition holds a full copy, so whoever
owns any of them next can adopt it; a copy this worker already wrote only receives what
changed since (a partition it has not written since it adopted gets everything, and
tombstones for SKUs it does not track).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, MutableMapping

from streamcrm.decisions import Learners
from streamcrm.learning import checkpoint
from streamcrm.learning.river_state import BadState

log = logging.getLogger(__name__)

Write = tuple[int, str, bytes | None]  # partition, key, value (None: a tombstone)


def model_key(partition: int) -> str:
    return f"{partition}/{checkpoint.MODEL}"


def sharing_key(partition: int) -> str:
    """Where the exchange stood when the model record was written (app/sharing.py)."""
    return f"{partition}/sharing"


def sku_prefix(partition: int) -> str:
    return f"{partition}/{checkpoint.SKU}"


def writes(
    learners: Learners, owned: Iterable[int], synced: set[int], table: MutableMapping[str, bytes]
) -> list[Write]:
    """Every record a checkpoint writes now, as of now (one snapshot, each SKU encoded
    once); ``synced`` partitions get only what changed since the last call."""
    stats = learners.candidates
    changed = stats.take_changes()
    owned = sorted(owned)
    full = any(p not in synced for p in owned)
    encoded = {sku: checkpoint.dump_item(stats, sku) for sku in stats.popularity} if full else {}
    for sku in changed:
        if sku not in encoded:
            encoded[sku] = checkpoint.dump_item(stats, sku)  # None: no longer tracked
    model = checkpoint.dump_model(learners)
    out: list[Write] = []
    for partition in owned:
        prefix = sku_prefix(partition)
        if partition in synced:
            skus: Iterable[str] = changed
        else:
            held = [k[len(prefix) :] for k in table if k.startswith(prefix)]
            skus = dict.fromkeys([*stats.popularity, *held])  # tombstones for held, untracked
        for sku in skus:
            value = encoded.get(sku)
            if (
                value is not None or prefix + sku in table
            ):  # no tombstone for what was never written
                out.append((partition, prefix + sku, value))
        out.append((partition, model_key(partition), model))
    return out


def adopt(
    current: Learners, table: MutableMapping[str, bytes], partitions: Iterable[int]
) -> tuple[Learners, int | None]:
    """The most advanced learners among ``current`` and the owned partitions' copies, and
    the partition adopted from (None: ``current`` was the most advanced)."""
    best_progress, best = checkpoint.progress(current), None
    for partition in partitions:
        blob = table.get(model_key(partition))
        if blob is None:
            continue
        try:
            claimed = checkpoint.model_progress(blob)
        except BadState as exc:
            log.warning("ignoring the learners checkpoint of partition %d: %s", partition, exc)
            continue
        if claimed > best_progress:
            best_progress, best = claimed, partition
    if best is None:
        return current, None
    prefix = sku_prefix(best)
    items = [(k[len(prefix) :], v) for k, v in table.items() if k.startswith(prefix)]
    try:
        learners, rejected = checkpoint.load(table[model_key(best)], items, like=current)
    except BadState as exc:
        log.warning("ignoring the learners checkpoint of partition %d: %s", best, exc)
        return current, None
    if rejected:
        log.warning("learners checkpoint of partition %d: %d bad SKU records left out",
                    best, rejected)  # fmt: skip
    return learners, best
