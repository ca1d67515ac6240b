"""Which customers have a deadline due: an in-memory index over durable state.

The deadlines themselves are not stored here: each is derived from the customer's state
(``policies.abandoned_cart.next_due``), which lives in the changelog-backed table. This
index is only a heap to find the due ones without scanning every customer; a worker
rebuilds it from the restored table after a restart or when it takes over partitions,
so a restart or a rebalance loses no deadline.

>>> index = DueIndex()
>>> index.set("c1", partition=0, due=50.0)
>>> index.set("c2", partition=1, due=10.0)
>>> index.set("c1", partition=0, due=70.0)  # moved: the old entry goes stale
>>> index.pop_due(60.0)
[('c2', 1)]
>>> index.set("c3", partition=0, due=80.0)
>>> index.pop_due(100.0, limit=1), len(index)
([('c1', 0)], 1)
>>> index.pop_due(100.0), len(index)
([('c3', 0)], 0)
"""

from __future__ import annotations

import heapq
from collections.abc import Callable


class DueIndex:
    """A min-heap of (due, customer) with lazy deletion; one live entry per customer."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] = []
        self._due: dict[str, tuple[float, int]] = {}  # customer -> (due, partition)

    def __len__(self) -> int:
        return len(self._due)

    def set(self, customer_id: str, *, partition: int, due: float | None) -> None:
        current = self._due.get(customer_id)
        if due is None:
            if current is not None:
                del self._due[customer_id]
            return
        if current is not None and current[0] == due:
            return
        self._due[customer_id] = (due, partition)
        heapq.heappush(self._heap, (due, customer_id))
        if len(self._heap) > 4 * len(self._due) + 1024:
            self._compact()

    def next_due(self) -> float | None:
        while self._heap:
            due, customer_id = self._heap[0]
            current = self._due.get(customer_id)
            if current is not None and current[0] == due:
                return due
            heapq.heappop(self._heap)
        return None

    def pop_due(
        self, now: float, owned: Callable[[int], bool] | None = None, limit: int | None = None
    ) -> list[tuple[str, int]]:
        """Remove and return (customer, partition) for every deadline at or before ``now``,
        earliest first; at most ``limit`` of them (the rest stay, due as they were).

        Entries on partitions this worker no longer owns are dropped, not returned: the
        new owner rebuilt them from its restored table.
        """
        due_now: list[tuple[str, int]] = []
        while (top := self.next_due()) is not None and top <= now:
            if limit is not None and len(due_now) >= limit:
                break
            _, customer_id = heapq.heappop(self._heap)
            _, partition = self._due.pop(customer_id)
            if owned is None or owned(partition):
                due_now.append((customer_id, partition))
        return due_now

    def drop_partitions(self, keep: Callable[[int], bool]) -> None:
        self._due = {c: v for c, v in self._due.items() if keep(v[1])}
        self._compact()

    def _compact(self) -> None:
        self._heap = [(due, c) for c, (due, _) in self._due.items()]
        heapq.heapify(self._heap)
