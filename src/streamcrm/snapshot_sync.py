"""When and how fast the Redis snapshot is brought back in line with the table. Pure.

The shell (:mod:`streamcrm.app.resync`) reads the clock and talks to Redis; every decision
it takes is one of these functions, given what it observed and ``now``:

- :func:`observe`: is Redis up or down, and did that just change (logged once each way);
- :func:`probe_delay`: how soon to look at Redis again (backing off while it is down);
- :func:`retry_due`: whether staged snapshots are retried now, without waiting for a batch;
- :func:`plan_resync`: which partitions are rewritten from the table, and why;
- :func:`resync_quota`: how many customers the resync may stage in this tick.

How a lost snapshot is noticed. Each partition a worker resyncs gets a marker key
(:func:`marker_key`), written when its resync starts. A marker that is gone means the keys
around it may be gone too (``FLUSHALL``/``FLUSHDB``, a restart without persistence, a
failover to an empty replica), and so does a changed ``run_id`` in ``INFO server`` (a
restart, perhaps from an older RDB/AOF: writes since then rolled back, markers included or
not). A ``DBSIZE`` drop was not chosen: other partitions' workers and other applications
share the database, so no threshold means "ours were lost". Neither signal sees a few
customer keys evicted under ``maxmemory`` while the marker survives: run Redis with
``noeviction`` (a write then fails and is retried) for the snapshot to be trusted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Change = Literal["down", "back"]

# Reasons a partition is rewritten from the table, as counted on /metrics.
ASSIGNED = "assigned"  # owned now and not yet synced: a start, a restart or a rebalance
REDIS_BACK = "redis_back"  # Redis answered again after failures
REDIS_RESTARTED = "redis_restarted"  # INFO run_id changed
MARKER_LOST = "marker_lost"  # a partition's marker key is gone: its keys may be too
REASONS = (ASSIGNED, REDIS_BACK, REDIS_RESTARTED, MARKER_LOST)


@dataclass(frozen=True, slots=True)
class Health:
    """What the worker last saw of Redis. ``up`` is None until the first answer or failure."""

    up: bool | None = None
    since: float = 0.0  # when the current up/down period began
    failures: int = 0  # consecutive failures

    def down_for(self, now: float) -> float:
        return now - self.since if self.up is False else 0.0


def observe(health: Health, ok: bool, now: float) -> tuple[Health, Change | None]:
    """Fold one Redis outcome in; say ``down`` or ``back`` only when that changes.

    >>> h, change = observe(Health(), ok=True, now=0.0)
    >>> change, h.up
    (None, True)
    >>> h, change = observe(h, ok=False, now=5.0)
    >>> change, h.failures
    ('down', 1)
    >>> h, change = observe(h, ok=False, now=6.0)
    >>> change, h.failures, h.since
    (None, 2, 5.0)
    >>> observe(h, ok=True, now=9.0)
    (Health(up=True, since=9.0, failures=0), 'back')
    """
    if ok:
        change: Change | None = "back" if health.up is False else None
        if health.up is True:
            return health, None
        return Health(True, now, 0), change
    if health.up is False:
        return Health(False, health.since, health.failures + 1), None
    return Health(False, now, 1), "down"


def probe_delay(health: Health, every_s: float, max_s: float) -> float:
    """Seconds until the next probe: ``every_s`` while up, doubling per failure while down.

    >>> [probe_delay(Health(False, 0.0, n), 0.5, 5.0) for n in (1, 2, 3, 4, 5, 9)]
    [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    >>> probe_delay(Health(True), 1.0, 5.0)
    1.0
    """
    if health.up is not False:
        return every_s
    return float(min(max_s, every_s * 2 ** min(health.failures - 1, 30)))


def retry_due(
    pending: int, writing: bool, up: bool | None, since_last_flush_s: float, retry_s: float
) -> bool:
    """Retry staged snapshots now? Only while Redis is up (while down, the probe decides),
    no write is under way (one writer at a time), and no flush started in ``retry_s``.

    >>> retry_due(3, False, True, 2.0, 1.0), retry_due(3, False, None, 2.0, 1.0)
    (True, True)
    >>> retry_due(0, False, True, 2.0, 1.0), retry_due(3, True, True, 2.0, 1.0)
    (False, False)
    >>> retry_due(3, False, False, 2.0, 1.0), retry_due(3, False, True, 0.5, 1.0)
    (False, False)
    """
    return pending > 0 and not writing and up is not False and since_last_flush_s >= retry_s


@dataclass(frozen=True, slots=True)
class Plan:
    partitions: frozenset[int]
    reasons: tuple[str, ...]


def plan_resync(
    owned: Iterable[int],
    covered: Iterable[int],
    *,
    lost: Iterable[int] = (),
    back: bool = False,
    restarted: bool = False,
) -> Plan:
    """Which owned partitions to rewrite from the table, and why.

    ``covered``: partitions already synced (or syncing) since this worker got them;
    ``lost``: partitions whose marker is gone; ``back``: Redis answered after failures;
    ``restarted``: Redis's run id changed. Partitions not owned are never planned.

    >>> plan_resync({0, 1, 2}, {0, 1})
    Plan(partitions=frozenset({2}), reasons=('assigned',))
    >>> plan_resync({0, 1}, {0, 1}, lost={1, 7})
    Plan(partitions=frozenset({1}), reasons=('marker_lost',))
    >>> plan_resync({0, 1}, {0}, back=True, restarted=True)
    Plan(partitions=frozenset({0, 1}), reasons=('assigned', 'redis_back', 'redis_restarted'))
    >>> plan_resync({0, 1}, {0, 1})
    Plan(partitions=frozenset(), reasons=())
    """
    owned = frozenset(owned)
    new = owned - frozenset(covered)
    reasons: list[str] = [ASSIGNED] if new else []
    planned = set(new)
    for flag, reason in ((back, REDIS_BACK), (restarted, REDIS_RESTARTED)):
        if flag and owned:
            planned |= owned
            reasons.append(reason)
    lost_owned = (frozenset(lost) & owned) - planned
    if lost_owned:
        planned |= lost_owned
        reasons.append(MARKER_LOST)
    return Plan(frozenset(planned), tuple(reasons))


def resync_quota(rate_per_s: float, elapsed_s: float, pending: int, max_pending: int) -> int:
    """Customers the resync may stage now: ``rate_per_s`` over the time since the last tick
    (at most 1 s of it, so a stalled loop does not come back with a burst), and never more
    than keeps the writer's backlog under ``max_pending`` (a slow Redis slows the resync).

    >>> resync_quota(2000, 0.25, 0, 5000)
    500
    >>> resync_quota(2000, 30.0, 0, 5000)
    2000
    >>> resync_quota(2000, 0.25, 4800, 5000), resync_quota(2000, 0.25, 9000, 5000)
    (200, 0)
    """
    budget = int(rate_per_s * min(max(elapsed_s, 0.0), 1.0))
    return max(0, min(budget, max_pending - pending))


def marker_key(prefix: str, partition: int) -> str:
    """The marker of one partition's snapshots. ``#`` is never in a customer id
    (schemas/common.schema.json), so no customer's key can be a marker.

    >>> marker_key("streamcrm:customer:", 3)
    'streamcrm:customer:#partition:3'
    """
    return f"{prefix}#partition:{partition}"
