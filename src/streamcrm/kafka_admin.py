"""Topic setup and broker checks with aiokafka's admin client (shell)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streamcrm.config import Settings, bootstrap_servers
from streamcrm.kafka_security import BrokerUnavailable, client_kwargs, start_client
from streamcrm.sharing.kafka import learning_topic

log = logging.getLogger(__name__)

__all__ = ["BrokerUnavailable", "TopicMismatch", "ensure_topics"]


class TopicMismatch(RuntimeError):
    """Input topics exist with different partition counts: co-partitioning would break."""


async def ensure_topics(settings: Settings, *, timeout_s: float = 15.0) -> None:
    """Create missing topics; refuse to run if the inputs are not co-partitioned."""
    servers = bootstrap_servers(settings.broker)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=servers,
        request_timeout_ms=int(timeout_s * 1000),
        **client_kwargs(settings.kafka_security),
    )
    await start_client(admin, servers, settings.kafka_security, timeout_s=timeout_s)
    try:
        audit = [settings.topics.decisions] if settings.audit else []
        learning = [learning_topic(settings.app_id)] if settings.share_learning else []
        internal = settings.topics.internal() if settings.price_suggestions else ()
        wanted = [
            *settings.topics.inputs(), *settings.topics.broadcast(), *settings.topics.outputs(),
            *internal, *audit, *learning,
        ]  # fmt: skip
        existing = set(await admin.list_topics())
        missing = [_new_topic(settings, name) for name in wanted if name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker was first
                await admin.create_topics(missing)
        await _check_copartitioned(admin, list(settings.topics.inputs()), settings.partitions)
    finally:
        await _close(admin)


def _new_topic(settings: Settings, name: str) -> NewTopic:
    configs = None
    if name == settings.topics.deadletter and settings.deadletter_retention_s is not None:
        # Dead letters keep the original bytes of bad input: keep them no longer than asked.
        configs = {"retention.ms": str(int(settings.deadletter_retention_s * 1000))}
    if settings.share_learning and name == learning_topic(settings.app_id):
        # One partition: every worker reads every delta, in one order (sharing/kafka.py).
        return NewTopic(name, 1, settings.replication_factor, topic_configs=configs)
    return NewTopic(name, settings.partitions, settings.replication_factor, topic_configs=configs)


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
