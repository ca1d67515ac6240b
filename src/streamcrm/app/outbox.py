"""Records out (decisions, dead letters, changelog) straight to the Kafka client.

Faust's ``topic.send`` wraps every record in a FutureMessage, a buffer hop and callbacks;
for a worker that emits about one record per event that was ~12% of its samples (py-spy:
the send lines 6.6%, Faust's producer-buffer task 4.9%).
The bytes are already encoded here, so records go to the producer Faust already runs,
with the same partitioner (murmur2 of the key) unless a partition is named.
Delivery is as Faust's own: appended now, acknowledged later; a failed delivery is counted
and logged, never silently lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Outbox:
    def __init__(self, producer: Callable[[], Any], *, delay_s: float = 0.0) -> None:
        self._producer = producer
        self.delay_s = delay_s  # a drill's slow producer (config.Drills.send_delay_s)
        self.sent = 0
        self.failed = 0
        self.last_error = ""

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None
    ) -> None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        delivery = await self._producer().send(topic, value, key=key, partition=partition)
        delivery.add_done_callback(self._delivered)
        self.sent += 1

    def _delivered(self, delivery: asyncio.Future[Any]) -> None:
        if delivery.cancelled():
            return
        error = delivery.exception()
        if error is not None:
            self.failed += 1
            if self.last_error != str(error):
                log.error("a record was not delivered to Kafka: %r", error)
            self.last_error = str(error)
