"""``/metrics`` after known traffic: the counters equal what was sent."""

from __future__ import annotations

import urllib.request
from collections import Counter

import orjson
from aiokafka import AIOKafkaProducer

from streamcrm.synthetic import generate

from .conftest import Deployment


def scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own worker
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


async def test_metrics_count_what_was_sent_by_type_and_dead_letters_by_reason(
    deployment: Deployment, producer: AIOKafkaProducer
) -> None:
    records = list(generate(1500, seed=17, customers=60, bad=36))
    worker = deployment.start_worker()
    for record in records:
        await producer.send(deployment.topic_of(record.topic_kind), record.value, key=record.key)
    await producer.flush()
    worker.wait_for(lambda s: s["events_in"] >= len(records), what="all records in")

    metrics = scrape(worker.base_url + "/metrics")
    sent_types = Counter(orjson.loads(r.value)["type"] for r in records if r.malformed is None)
    for event_type, n in sent_types.items():
        assert metrics[f'streamcrm_events_applied_total{{type="{event_type}"}}'] == n, event_type
    sent_topics = Counter(deployment.topic_of(r.topic_kind) for r in records)
    for topic, n in sent_topics.items():
        assert metrics[f'streamcrm_events_in_total{{topic="{topic}"}}'] == n
    reasons = Counter(r.malformed for r in records if r.malformed)
    assert len(reasons) == 6
    for reason, n in reasons.items():
        assert metrics[f'streamcrm_dead_letters_total{{reason="{reason}"}}'] == n, reason
    assert metrics["streamcrm_event_to_decision_seconds_count"] == len(records)
    assert metrics["streamcrm_table_customers"] == len(
        {r.key for r in records if r.malformed is None}
    )
