"""The pacing decisions of the Redis convergence (streamcrm.snapshot_sync): pure functions."""

from __future__ import annotations

import pytest

from streamcrm.redaction import redis_address
from streamcrm.snapshot import snapshot_key
from streamcrm.snapshot_sync import (
    ASSIGNED,
    MARKER_LOST,
    REDIS_BACK,
    REDIS_RESTARTED,
    Health,
    marker_key,
    observe,
    plan_resync,
    probe_delay,
    resync_quota,
    retry_due,
)


def test_an_outage_is_reported_once_down_and_once_back() -> None:
    health, changes = Health(), []
    outcomes = [True, True, False, False, False, True, True, False, True]
    for t, ok in enumerate(outcomes):
        health, change = observe(health, ok, float(t))
        changes.append(change)
    assert changes == [None, None, "down", None, None, "back", None, "down", "back"]
    assert health == Health(True, 8.0, 0)


def test_unreachable_at_start_is_reported_and_so_is_its_return() -> None:
    health, change = observe(Health(), ok=False, now=1.0)
    assert change == "down" and health.down_for(4.0) == 3.0
    health, change = observe(health, ok=True, now=4.0)
    assert change == "back" and health.down_for(10.0) == 0.0


def test_probe_backs_off_while_down_and_is_capped() -> None:
    delays = [probe_delay(Health(False, 0.0, n), 1.0, 5.0) for n in range(1, 8)]
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0]
    assert probe_delay(Health(False, 0.0, 10_000), 1.0, 5.0) == 5.0  # no overflow
    assert probe_delay(Health(), 1.0, 5.0) == probe_delay(Health(True), 1.0, 5.0) == 1.0


@pytest.mark.parametrize(
    ("pending", "writing", "up", "since", "due"),
    [
        (5, False, True, 1.0, True),
        (5, False, None, 1.0, True),  # not probed yet: try
        (0, False, True, 9.0, False),  # nothing to retry
        (5, True, True, 9.0, False),  # one writer at a time
        (5, False, False, 9.0, False),  # down: the probe decides when to retry
        (5, False, True, 0.99, False),  # a flush started less than retry_s ago
    ],
)
def test_retry_due(pending: int, writing: bool, up: bool | None, since: float, due: bool) -> None:
    assert retry_due(pending, writing, up, since, retry_s=1.0) is due


def test_plan_resyncs_newly_owned_partitions_only_once() -> None:
    first = plan_resync({0, 1}, set())
    assert first.partitions == {0, 1} and first.reasons == (ASSIGNED,)
    assert plan_resync({0, 1}, {0, 1}).partitions == frozenset()
    after_rebalance = plan_resync({1, 2, 3}, {0, 1})
    assert after_rebalance.partitions == {2, 3}  # 0 went away, 1 is already synced


def test_plan_rewrites_everything_owned_when_redis_is_back_or_restarted() -> None:
    for flags, reason in (({"back": True}, REDIS_BACK), ({"restarted": True}, REDIS_RESTARTED)):
        plan = plan_resync({0, 1, 2}, {0, 1, 2}, **flags)
        assert plan.partitions == {0, 1, 2} and plan.reasons == (reason,)


def test_plan_rewrites_partitions_whose_marker_is_lost_if_owned() -> None:
    plan = plan_resync({0, 1, 2}, {0, 1, 2}, lost={2, 5})
    assert plan.partitions == {2} and plan.reasons == (MARKER_LOST,)
    # A lost marker of a partition already planned adds no second reason.
    plan = plan_resync({0, 1}, {0}, lost={1})
    assert plan.partitions == {1} and plan.reasons == (ASSIGNED,)
    assert plan_resync(set(), set(), back=True, lost={1}).partitions == frozenset()


def test_resync_quota_paces_by_rate_and_by_the_writers_backlog() -> None:
    assert resync_quota(2000, 0.2, 0, 5000) == 400
    assert resync_quota(2000, 0.0, 0, 5000) == 0
    assert resync_quota(2000, -1.0, 0, 5000) == 0  # a clock going back never gives a burst
    assert resync_quota(2000, 120.0, 0, 5000) == 2000  # a stalled loop: at most 1 s worth
    assert resync_quota(2000, 0.2, 4900, 5000) == 100
    assert resync_quota(2000, 0.2, 7000, 5000) == 0
    # Over a simulated minute of 0.2 s ticks the resync stages rate * time, no more.
    assert sum(resync_quota(500, 0.2, 0, 5000) for _ in range(300)) == 500 * 60


def test_marker_keys_never_collide_with_customer_keys() -> None:
    prefix = "streamcrm:customer:"
    marker = marker_key(prefix, 0)
    assert marker.startswith(prefix)
    # Customer ids match ^[A-Za-z0-9._:@-]+$ (schemas/common.schema.json): no '#'.
    assert "#" in marker.removeprefix(prefix)
    assert marker != snapshot_key("partition:0", prefix)
    assert len({marker_key(prefix, p) for p in range(64)}) == 64


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "127.0.0.1:6379/0"),
        ("redis://:hunter2@cache:6380/3", "cache:6380/3"),
        ("redis://admin:hunter2@cache", "cache:6379/0"),
        ("rediss://u:hunter2@[::1]:7000/1", "::1:7000/1"),
        ("unix://:hunter2@/var/run/redis.sock", "unix:/var/run/redis.sock"),
    ],
)
def test_redis_address_never_shows_a_password(url: str, shown: str) -> None:
    assert redis_address(url) == shown
    assert "hunter2" not in redis_address(url)
