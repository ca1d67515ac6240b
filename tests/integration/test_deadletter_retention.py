"""``--deadletter-retention``: the dead-letter topic is created with that retention.ms
(dead letters keep the original bytes of bad input); other topics keep the broker's."""

from __future__ import annotations

import uuid
from dataclasses import replace

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streamcrm.cli import build_parser, settings_from
from streamcrm.kafka_admin import ensure_topics


async def topic_retention(bootstrap: str, topics: list[str]) -> dict[str, str | None]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        answers = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t) for t in topics]
        )
    finally:
        await admin.close()
    found: dict[str, str | None] = {}
    for answer in answers:
        for _code, _message, _type, name, configs in answer.resources:
            found[name] = next((c[1] for c in configs if c[0] == "retention.ms"), None)
    return found


async def test_the_deadletter_topic_is_created_with_the_retention_asked_for(
    kafka_bootstrap: str,
) -> None:
    run = uuid.uuid4().hex[:8]
    args = build_parser().parse_args(
        ["worker", "--broker", kafka_bootstrap, "--deadletter-retention", "7d", "--partitions", "2",
         "--topic-deadletter", f"r{run}.deadletter", "--topic-coupons", f"r{run}.coupons",
         "--topic-browse", f"r{run}.browse", "--topic-cart", f"r{run}.cart",
         "--topic-order", f"r{run}.order"]
    )  # fmt: skip
    settings = settings_from(args)
    assert settings.deadletter_retention_s == 7 * 86400
    await ensure_topics(settings)
    t = settings.topics
    retention = await topic_retention(kafka_bootstrap, [t.deadletter, t.coupons])
    assert retention[t.deadletter] == str(7 * 86400 * 1000)
    # Against Apache Kafka a topic without its own setting reports the broker default.
    assert retention[t.coupons] != retention[t.deadletter]

    # Without the flag the dead-letter topic keeps the broker's retention.
    plain = replace(settings, deadletter_retention_s=None, topics=replace(t, deadletter=f"r{run}.dl2"))
    await ensure_topics(plain)
    assert (await topic_retention(kafka_bootstrap, [f"r{run}.dl2"]))[f"r{run}.dl2"] != retention[t.deadletter]
