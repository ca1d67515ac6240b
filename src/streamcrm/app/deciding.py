"""Deciding outside the ingest loop (the deadline sweep, the campaigns reader). Shell only.

What such a task needs, in one place: the processor, the customer table's lookup, the
batch commit, the decision lock the ingest loop holds too, and the partitions owned.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from streamcrm.ingest import BatchResult, Lookup, Owned, Processor

if TYPE_CHECKING:
    import faust

    from streamcrm.app.commit import BatchCommit
    from streamcrm.config import Settings


@dataclass(frozen=True, slots=True)
class Deciding:
    app: faust.App
    settings: Settings
    processor: Processor
    lookup: Lookup
    commit: BatchCommit
    lock: asyncio.Lock  # held across decide + commit by the ingest loop as well
    owned: Callable[[], set[int]]  # the input partitions this worker owns now

    async def decide(
        self, run: Callable[[float, Owned], BatchResult], *, commit_empty: bool = True
    ) -> BatchResult | None:
        """``run(now, owned)`` under the lock, then its commit; None while partitions may
        be changing hands (the next owner decides from its restored table: deciding here
        could decide twice)."""
        async with self.lock:  # after a batch's commit, never between its writes
            if self.app.rebalancing or self.app.should_stop:
                return None
            now = time.time()
            result = run(now, self.owned().__contains__)
            if commit_empty or result.states:
                await self.commit(result, now)
        if result.states:
            # Delivered now, so a handover right after restores what was decided here
            # ("already fired", "enrolled") rather than deciding it again.
            await self.app.producer.flush()
        return result
