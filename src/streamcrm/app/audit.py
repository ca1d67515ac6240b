"""The durable decision audit: every decision record of a batch to ``topics.decisions``,
when ``Settings.audit`` is on (``--audit``). The records are the core's
(:mod:`streamcrm.audit`); this only sends them, through the same outbox as every output,
so they are delivered before the batch's offsets are committed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson

from streamcrm.audit import audit_record

if TYPE_CHECKING:
    from streamcrm.app.factory import Runtime


async def publish_audit(runtime: Runtime, decisions: Iterable[dict[str, Any]]) -> None:
    if not runtime.settings.audit:
        return
    topic = runtime.settings.topics.decisions
    for decision in decisions:
        key, body = audit_record(decision, runtime.rules_version)
        await runtime.outbox.send(topic, key, orjson.dumps(body))
