"""Per-SKU demand deltas: a worker's share of each SKU's demand, re-keyed by SKU. Pure.

Demand is per SKU but the inputs are partitioned by customer, so every worker sees a
share of each SKU. Each worker collects, per batch, what its applied events add per SKU
and per bucket (:class:`DemandDeltas`) and publishes them to the internal topic
``Topics.sku_demand``, partitioned by SKU: one record per destination partition and
batch, holding every SKU of that partition the batch touched; the owner of the partition
adds each SKU's rows into its :class:`~streamcrm.pricing.demand.SkuDemand` and tests it
(:func:`~streamcrm.pricing.suggest.observe_counts`, the same core the in-memory replay
runs per event). One record per partition, not per SKU: on a large catalogue a batch
touches nearly one new SKU per event, and a Kafka record each cost more than the
decisions (measured: README, "Price suggestions").

A record's value, JSON (version 2): ``{"v": 2, "sender": "w1", "seq": 7, "skus":
[["s1", [[ts, views, cart_adds, purchases], ...]], ...]}``, each SKU once, its rows one
per bucket the batch touched, oldest first, ``ts`` the earliest event time the batch had
in that bucket (so a row that opens a bucket is tested at the same moment an
event-by-event run tests it). ``sender`` names the worker incarnation, ``seq`` numbers
its records (1, 2, ...): the topic is at-least-once, and the owner skips a (sender, seq)
it merged already for a SKU (:mod:`streamcrm.pricing.owner`), as the learner exchange
does (sharing/learners.py). At most :data:`MAX_ROWS` rows per SKU and
:data:`MAX_RECORD_ROWS` per record (more goes in the next record). Version 1, one SKU a
record (``{"sku": "s1", "rows": [...], "sender": "w1", "seq": 7}``), is still read: a
worker of an older release may be running beside this one during an upgrade. A record is
data from another process, never trusted: :func:`decode` names what is wrong
(:class:`BadDelta`), and the owner dead-letters it whole. A worker sends a bucket once
all its partitions have passed it (:meth:`DemandDeltas.take` with ``until``, the least
event time they have reached).

>>> deltas = DemandDeltas(bucket_s=300.0, sender="w1")
>>> from streamcrm.events import Event
>>> for i, (kind, sku) in enumerate((("product_viewed", "s1"), ("cart_item_added", "s1"),
...                                  ("product_viewed", "s2"))):
...     deltas.observe(Event(f"e{i}", kind, "c1", 600.0 + i, "web", None, {"sku": sku}))
>>> [(p.partition, decode(p.value)) for p in deltas.take()]  # doctest: +NORMALIZE_WHITESPACE
[(None, [Delta(sku='s1', rows=[(600.0, (1, 1, 0))], sender='w1', seq=1),
         Delta(sku='s2', rows=[(602.0, (1, 0, 0))], sender='w1', seq=1)])]
>>> deltas.take()
[]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import orjson

from streamcrm.events import Event
from streamcrm.pricing.demand import Counts
from streamcrm.pricing.suggest import skus_of

MAX_ROWS = 256  # rows (buckets) per SKU in one record
MAX_RECORD_ROWS = 8_192  # rows per record: about 250 KB of JSON, under Kafka's 1 MB default
MAX_RECORD_SKUS = MAX_RECORD_ROWS
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


class Packet(NamedTuple):
    """One record to send: its partition of the demand topic (None: the caller's
    partitioner), key and value."""

    partition: int | None
    key: bytes
    value: bytes


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

    def take(
        self, until: float | None = None, partition_of: Callable[[str], int] | None = None
    ) -> list[Packet]:
        """The records of the buckets complete before ``until`` (None: all), one per
        partition ``partition_of`` gives a SKU (None: all SKUs in one), split past
        :data:`MAX_RECORD_ROWS`; each SKU's buckets in order, the rest kept for a later
        take. Holding a bucket until every partition of the worker has passed it is what
        keeps one partition read ahead of the others from testing a bucket before the
        others' counts are in; past :data:`MAX_PENDING_ROWS` everything goes (a silent
        partition cannot hold memory)."""
        if until is None or until == math.inf or self.rows > MAX_PENDING_ROWS:
            ready, self._rows, self.rows = self._rows, {}, 0
        elif not math.isfinite(until):  # -inf: a partition has not begun
            return []
        else:
            ready = self._split(int(until // self.bucket_s))
        groups: dict[int | None, list[tuple[str, list[Any]]]] = {}
        for sku, buckets in ready.items():
            rows = [buckets[i] for i in sorted(buckets)]
            group = groups.setdefault(None if partition_of is None else partition_of(sku), [])
            group += [(sku, rows[i : i + MAX_ROWS]) for i in range(0, len(rows), MAX_ROWS)]
        return [packet for partition, chunks in groups.items() for packet in self._pack(partition, chunks)]

    def _pack(self, partition: int | None, chunks: list[tuple[str, list[Any]]]) -> list[Packet]:
        """Chunks into records: a new one past the row cap or when a SKU comes again (a
        SKU is once per record, so its (sender, seq) names one chunk)."""
        out: list[Packet] = []
        body: list[Any] = []
        rows = 0
        for sku, chunk in chunks:
            if body and (rows + len(chunk) > MAX_RECORD_ROWS or body[-1][0] == sku):
                out.append(self._packet(partition, body))
                body, rows = [], 0
            body.append([sku, chunk])
            rows += len(chunk)
        if body:
            out.append(self._packet(partition, body))
        return out

    def _packet(self, partition: int | None, body: list[Any]) -> Packet:
        self.seq += 1
        value = orjson.dumps({"v": 2, "sender": self.sender, "seq": self.seq, "skus": body})
        return Packet(partition, self.sender.encode(), value)

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


def decode(value: bytes | None) -> list[Delta]:
    """A record as :meth:`DemandDeltas.take` writes it (or a version-1 record): one
    :class:`Delta` per SKU, or :class:`BadDelta` (reason ``invalid_json``,
    ``not_an_object`` or ``schema_violation``) for the whole record."""
    try:
        data = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        raise BadDelta("invalid_json", f"demand delta: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadDelta("not_an_object", "demand delta: expected a JSON object")
    if "v" not in data:
        return [_version_1(data)]
    if data["v"] != 2:
        raise BadDelta("schema_violation", f"demand delta: unknown version {str(data['v'])[:20]}")
    sender, seq = _sender(data.get("sender"), data.get("seq"))
    skus = data.get("skus")
    if type(skus) is not list or not 0 < len(skus) <= MAX_RECORD_SKUS:
        raise BadDelta("schema_violation", f"demand delta: skus must be a list of 1-{MAX_RECORD_SKUS}")
    out, seen, total = [], set(), 0
    for entry in skus:
        if type(entry) is not list or len(entry) != 2:
            raise BadDelta("schema_violation", "demand delta: an entry of skus is [sku, rows]")
        sku, rows = _sku(entry[0]), _rows(entry[1])
        if sku in seen:
            raise BadDelta("schema_violation", f"demand delta: sku {sku[:40]} twice in one record")
        seen.add(sku)
        total += len(rows)
        out.append(Delta(sku, rows, sender, seq))
    if total > MAX_RECORD_ROWS:
        raise BadDelta("schema_violation", f"demand delta: more than {MAX_RECORD_ROWS} rows")
    return out


def _version_1(data: dict[str, Any]) -> Delta:
    sku, rows = _sku(data.get("sku")), _rows(data.get("rows"))
    sender, seq = data.get("sender"), data.get("seq")
    if sender is None and seq is None:
        return Delta(sku, rows)
    return Delta(sku, rows, *_sender(sender, seq))


def _sku(sku: Any) -> str:
    if type(sku) is not str or not 0 < len(sku) <= MAX_SKU_CHARS:
        raise BadDelta("schema_violation", f"demand delta: sku must be text of 1-{MAX_SKU_CHARS} chars")
    return sku


def _rows(rows: Any) -> list[Row]:
    if type(rows) is not list or not 0 < len(rows) <= MAX_ROWS:
        raise BadDelta("schema_violation", f"demand delta: rows must be a list of 1-{MAX_ROWS}")
    return [_row(r) for r in rows]


def _sender(sender: Any, seq: Any) -> tuple[str, int]:
    if type(sender) is not str or not len(sender) <= MAX_SKU_CHARS:
        raise BadDelta("schema_violation", f"demand delta: sender must be text of 0-{MAX_SKU_CHARS} chars")
    if type(seq) is not int or not 0 < seq <= MAX_SEQ:
        raise BadDelta("schema_violation", "demand delta: seq must be a whole number >= 1")
    return sender, seq


def _row(r: Any) -> Row:
    if type(r) is not list or len(r) != 4:
        raise BadDelta("schema_violation", "demand delta: a row is [ts, views, cart_adds, purchases]")
    ts, v, c, p = r
    if not (type(ts) in (int, float) and math.isfinite(ts) and 0 <= ts <= MAX_TS):
        raise BadDelta("schema_violation", f"demand delta: ts {str(ts)[:40]} is not a time")
    if not all(type(n) is int and 0 <= n <= MAX_COUNT for n in (v, c, p)) or v + c + p == 0:
        raise BadDelta("schema_violation", "demand delta: counts must be whole numbers >= 0, not all 0")
    return float(ts), (v, c, p)
