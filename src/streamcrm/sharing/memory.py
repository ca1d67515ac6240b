"""The in-memory transport: every delta published is delivered to every worker once
``delay_s`` of event time has passed since it was published. Pure (no clock: the replay
passes event time)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(slots=True)
class MemoryTransport:
    delay_s: float = 0.0
    _queue: deque[tuple[float, bytes]] = field(default_factory=deque)
    messages: int = 0
    bytes: int = 0

    def publish(self, delta: dict[str, Any], now: float) -> None:
        """Encoded as it would be on a topic (the bytes are the traffic measured)."""
        payload = orjson.dumps(delta)
        self.messages += 1
        self.bytes += len(payload)
        self._queue.append((now + self.delay_s, payload))

    def due(self, now: float) -> list[Any]:
        """Every delta deliverable at ``now``, oldest first (each worker merges all)."""
        out = []
        while self._queue and self._queue[0][0] <= now:
            out.append(orjson.loads(self._queue.popleft()[1]))
        return out
