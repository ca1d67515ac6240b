"""Event-time order across the three input topics of one partition. Pure.

Kafka orders a customer's events per topic, not across topics: the worker can read a
cart event after a later order. On the event clock that would change decisions, so each
partition's valid events wait here until every input topic of that partition has shown a
later event time (a minimum watermark, as in Flink) or has ended, and come out in
(time, topic rank, arrival) order, the order an in-memory replay of the same log uses.

An input ends with an end-of-stream control record carrying the log's final event time:
then the partition's deadlines up to that time may fire, as in the in-memory replay.

>>> buffer = ReorderBuffer(["browse", "cart", "order"])
>>> buffer.push("cart", 0, 5.0, "add")
>>> buffer.push("browse", 0, 9.0, "view")
>>> buffer.release(0)  # the order topic has said nothing yet: wait
[]
>>> buffer.push("order", 0, 7.0, "buy")
>>> buffer.release(0)  # everything before 7 on every topic is in
[(5.0, 'add')]
>>> for topic in ("browse", "cart", "order"):
...     buffer.close(topic, 0, final_ts=9.0)
>>> buffer.release(0), buffer.final_watermark(0)
([(7.0, 'buy'), (9.0, 'view')], 9.0)
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from typing import Any


class ReorderBuffer:
    def __init__(self, topics: Sequence[str]) -> None:
        self._rank = {topic: i for i, topic in enumerate(topics)}
        self._heaps: dict[int, list[tuple[float, int, int, Any]]] = {}
        self._seen: dict[tuple[str, int], float] = {}
        self._closed: dict[tuple[str, int], float] = {}
        self._seq = 0

    def __len__(self) -> int:
        return sum(len(heap) for heap in self._heaps.values())

    def push(self, topic: str, partition: int, ts: float, item: Any) -> None:
        self._seq += 1
        heapq.heappush(
            self._heaps.setdefault(partition, []), (ts, self._rank[topic], self._seq, item)
        )
        key = (topic, partition)
        self._seen[key] = max(self._seen.get(key, -math.inf), ts)

    def close(self, topic: str, partition: int, final_ts: float) -> None:
        """No more events on this input; ``final_ts`` is the last event time of the log."""
        self._closed[(topic, partition)] = final_ts

    def _safe(self, partition: int, ts: float, rank: int) -> bool:
        """No other topic can still deliver an event that sorts before (ts, rank).

        Its own topic cannot: a topic's events arrive in time order and ties keep arrival order.
        """
        for topic, other in self._rank.items():
            if other == rank or (topic, partition) in self._closed:
                continue
            seen = self._seen.get((topic, partition), -math.inf)
            if seen < ts or (seen == ts and other < rank):
                return False
        return True

    def release(self, partition: int) -> list[tuple[float, Any]]:
        heap = self._heaps.get(partition, [])
        released = []
        while heap and self._safe(partition, heap[0][0], heap[0][1]):
            ts, _, _, item = heapq.heappop(heap)
            released.append((ts, item))
        return released

    def final_watermark(self, partition: int) -> float | None:
        """The log's final event time once every input of the partition has ended."""
        finals = [self._closed.get((t, partition)) for t in self._rank]
        return None if any(f is None for f in finals) else max(f for f in finals if f is not None)
