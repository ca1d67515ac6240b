"""Topic setup and broker checks with aiokafka's admin client (shell)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from streamcrm.config import Settings, bootstrap_servers

log = logging.getLogger(__name__)


class BrokerUnavailable(RuntimeError):
    """The broker could not be reached; the message says where and how to fix it."""


class TopicMismatch(RuntimeError):
    """Input topics exist with different partition counts: co-partitioning would break."""


async def ensure_topics(settings: Settings, *, timeout_s: float = 15.0) -> None:
    """Create missing topics; refuse to run if the inputs are not co-partitioned."""
    servers = bootstrap_servers(settings.broker)
    admin = AIOKafkaAdminClient(bootstrap_servers=servers, request_timeout_ms=int(timeout_s * 1000))
    try:
        with client_errors_muted():
            await asyncio.wait_for(admin.start(), timeout_s)
    except (TimeoutError, KafkaError, OSError) as exc:
        await _close(admin)
        msg = (
            f"cannot reach the Kafka broker at {servers} ({type(exc).__name__}); "
            "start it or point --broker / KAFKA_BOOTSTRAP_SERVERS at a running one"
        )
        raise BrokerUnavailable(msg) from None
    try:
        wanted = [*settings.topics.inputs(), *settings.topics.outputs()]
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, settings.partitions, settings.replication_factor)
            for name in wanted
            if name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker was first
                await admin.create_topics(missing)
        await _check_copartitioned(admin, list(settings.topics.inputs()), settings.partitions)
    finally:
        await _close(admin)


async def _check_copartitioned(admin: AIOKafkaAdminClient, names: list[str], want: int) -> None:
    for _ in range(50):  # newly created topics take a moment to show their partitions
        described = await admin.describe_topics(names)
        counts = {d["topic"]: len(d.get("partitions") or []) for d in described}
        if all(counts.get(n) for n in names):
            break
        await asyncio.sleep(0.1)
    if len(set(counts.values())) != 1 or counts.get(names[0]) != want:
        msg = (
            f"input topics must all have {want} partitions (found {counts}); "
            "recreate them or set --partitions / STREAMCRM_PARTITIONS to match"
        )
        raise TopicMismatch(msg)


@contextlib.contextmanager
def client_errors_muted() -> Iterator[None]:
    """Silence aiokafka while we probe the broker: we report a failure in one line ourselves."""
    client_log = logging.getLogger("aiokafka")
    level = client_log.level
    client_log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        client_log.setLevel(level)


async def _close(admin: AIOKafkaAdminClient) -> None:
    try:
        await admin.close()
    except Exception:
        log.debug("admin client close failed", exc_info=True)
