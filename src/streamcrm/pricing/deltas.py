"""Per-SKU demand deltas: a worker's share of each SKU's demand, re-keyed by SKU. Pure.

Demand is per SKU but the inputs are partitioned by customer, so every worker sees a
share of each SKU. Each worker collects, per batch, what its applied events add per SKU
and per bucket (:class:`DemandDeltas`) and publishes one small record per SKU to the
internal topic keyed by SKU (``Topics.sku_demand``); the owner of that topic's partition
adds the rows into the SKU's :class:`~streamcrm.pricing.demand.SkuDemand` and tests it
(:func:`~streamcrm.pricing.suggest.observe_counts`, the same core the in-memory replay
runs per event).

A record's value, JSON: ``{"sku": "s1", "rows": [[ts, views, cart_adds, purchases],
...], "sender": "w1", "seq": 7}``, one row per bucket the batch touched, oldest first,
``ts`` the earliest event time the batch had in that bucket (so a row that opens a
bucket is tested at the same moment an event-by-event run tests it). ``sender`` names
the worker incarnation, ``seq`` numbers its records (1, 2, ...): the topic is
at-least-once, and the owner skips a (sender, seq) it merged already
(:mod:`streamcrm.pricing.owner`), as the learner exchange does (sharing/learners.py). At most :data:`MAX_ROWS` rows a record (a
batch spanning more buckets is split). A record is data from another process, never
trusted: :func:`decode` names what is wrong (:class:`BadDelta`), and the owner
dead-letters it. A worker sends a bucket once all its partitions have passed it
(:meth:`DemandDeltas.take` with ``until``, the least event time they have reached).

>>> deltas = DemandDeltas(bucket_s=300.0, sender="w1")
>>> from streamcrm.events import Event
>>> for i, kind in enumerate(("product_viewed", "cart_item_added", "product_viewed")):
...     deltas.observe(Event(f"e{i}", kind, "c1", 600.0 + i, "web", None, {"sku": "s1"}))
>>> [(key, decode(value)) for key, value in deltas.take()]
[(b's1', Delta(sku='s1', rows=[(600.0, (2, 1, 0))], sender='w1', seq=1))]
>>> deltas.take()
[]
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import orjson

from streamcrm.events import Event
from streamcrm.pricing.demand import Counts
from streamcrm.pricing.suggest import skus_of

MAX_ROWS = 256  # rows (buckets) per record
MAX_PENDING_ROWS = 100_000  # rows held back for partitions behind (about 10 MB)
MAX_SKU_CHARS = 256
MAX_COUNT = 10_000_000  # per row and metric: far above any batch
MAX_TS = 253_402_300_799.0  # 9999-12-31T23:59:59Z, as the input events' bound
MAX_SEQ = 2**53  # exact in JSON readers that use doubles

Row = tuple[float, Counts]


class Delta(NamedTuple):
    """One decoded record; ``sender`` and ``seq`` are None in a record without them (a
    worker from before they were sent: never skipped as a duplicate)."""

    sku: str
    rows: list[Row]
    sender: str | None = None
    seq: int | None = None


class BadDelta(ValueError):
    """A record on the demand topic that is not a delta; ``reason`` is a dead-letter reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class DemandDeltas:
    """What a worker's applied events added per SKU since the last :meth:`take`.

    Cost per event: one dict lookup per SKU the event names; size: one row per SKU and
    bucket touched (a batch's worth)."""

    __slots__ = ("_rows", "bucket_s", "events", "rows", "sender", "seq")

    def __init__(self, bucket_s: float, sender: str = "") -> None:
        self.bucket_s = bucket_s
        self.sender = sender  # unique per worker incarnation: its seq starts at 0 again
        self.seq = 0  # the last record's sequence number
        self.events = 0
        self.rows = 0  # (SKU, bucket) rows held
        self._rows: dict[str, dict[int, list[Any]]] = {}  # sku -> bucket -> [ts, v, c, p]

    def observe(self, event: Event) -> None:
        pairs = skus_of(event)
        if not pairs:
            return
        self.events += 1
        ts, index = event.ts, int(event.ts // self.bucket_s)
        for sku, metric in pairs:
            buckets = self._rows.get(sku)
            if buckets is None:
                buckets = self._rows[sku] = {}
            row = buckets.get(index)
            if row is None:
                row = buckets[index] = [ts, 0, 0, 0]
                self.rows += 1
            elif ts < row[0]:
                row[0] = ts
            row[1 + metric] += 1

    def __len__(self) -> int:
        return len(self._rows)

    def take(self, until: float | None = None) -> list[tuple[bytes, bytes]]:
        """(key, value) records of the buckets complete before ``until`` (None: all), in
        bucket order per SKU; the rest is kept for a later take. Holding a bucket until
        every partition of the worker has passed it is what keeps one partition read ahead
        of the others from testing a bucket before the others' counts are in; past
        :data:`MAX_PENDING_ROWS` everything goes (a silent partition cannot hold memory)."""
        if until is None or until == math.inf or self.rows > MAX_PENDING_ROWS:
            ready, self._rows, self.rows = self._rows, {}, 0
        elif not math.isfinite(until):  # -inf: a partition has not begun
            return []
        else:
            ready = self._split(int(until // self.bucket_s))
        out: list[tuple[bytes, bytes]] = []
        for sku, buckets in ready.items():
            rows = [buckets[i] for i in sorted(buckets)]
            key = sku.encode()
            for start in range(0, len(rows), MAX_ROWS):
                self.seq += 1
                body = {"sku": sku, "rows": rows[start : start + MAX_ROWS], "sender": self.sender,
                        "seq": self.seq}  # fmt: skip
                out.append((key, orjson.dumps(body)))
        return out

    def _split(self, limit: int) -> dict[str, dict[int, list[Any]]]:
        ready: dict[str, dict[int, list[Any]]] = {}
        kept: dict[str, dict[int, list[Any]]] = {}
        for sku, buckets in self._rows.items():
            if min(buckets) >= limit:
                kept[sku] = buckets
                continue
            done = {i: r for i, r in buckets.items() if i < limit}
            ready[sku] = done
            if len(done) < len(buckets):
                kept[sku] = {i: r for i, r in buckets.items() if i >= limit}
        self._rows = kept
        self.rows = sum(len(b) for b in kept.values())
        return ready


def decode(value: bytes | None) -> Delta:
    """A record as :meth:`DemandDeltas.take` writes it, or :class:`BadDelta` (reason
    ``invalid_json``, ``not_an_object`` or ``schema_violation``)."""
    try:
        data = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        raise BadDelta("invalid_json", f"demand delta: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadDelta("not_an_object", "demand delta: expected a JSON object")
    sku, rows = data.get("sku"), data.get("rows")
    if type(sku) is not str or not 0 < len(sku) <= MAX_SKU_CHARS:
        raise BadDelta("schema_violation", f"demand delta: sku must be text of 1-{MAX_SKU_CHARS} chars")
    if type(rows) is not list or not 0 < len(rows) <= MAX_ROWS:
        raise BadDelta("schema_violation", f"demand delta: rows must be a list of 1-{MAX_ROWS}")
    sender, seq = data.get("sender"), data.get("seq")
    if sender is None and seq is None:
        return Delta(sku, [_row(r) for r in rows])
    if type(sender) is not str or not len(sender) <= MAX_SKU_CHARS:
        raise BadDelta("schema_violation", f"demand delta: sender must be text of 0-{MAX_SKU_CHARS} chars")
    if type(seq) is not int or not 0 < seq <= MAX_SEQ:
        raise BadDelta("schema_violation", "demand delta: seq must be a whole number >= 1")
    return Delta(sku, [_row(r) for r in rows], sender, seq)


def _row(r: Any) -> Row:
    if type(r) is not list or len(r) != 4:
        raise BadDelta("schema_violation", "demand delta: a row is [ts, views, cart_adds, purchases]")
    ts, v, c, p = r
    if not (type(ts) in (int, float) and math.isfinite(ts) and 0 <= ts <= MAX_TS):
        raise BadDelta("schema_violation", f"demand delta: ts {str(ts)[:40]} is not a time")
    if not all(type(n) is int and 0 <= n <= MAX_COUNT for n in (v, c, p)) or v + c + p == 0:
        raise BadDelta("schema_violation", "demand delta: counts must be whole numbers >= 0, not all 0")
    return float(ts), (v, c, p)
