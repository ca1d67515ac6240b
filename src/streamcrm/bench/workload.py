"""The benchmark's events: the synthetic shop, or a real log through the replay adapters.

``bench --workload FORMAT FILE`` maps the log as ``streamcrm replay`` does
(:mod:`streamcrm.replay.adapters`, in the replay's event-time order) and publishes those
events instead of the synthetic shop's, for the three contenders and for the latency
run. The workers run on the wall clock, as in production: a log's events are all in
the past, so deadlines they imply (abandoned carts, lifecycle stages) are due at once
and fire at the end of the batch that brought them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from streamcrm.replay.adapters import FORMATS, map_rows
from streamcrm.replay.runner import replay_order
from streamcrm.synthetic import generate

Records = Iterator[tuple[str, bytes, bytes]]  # (topic kind, key, value), as publish() takes


class WorkloadError(ValueError):
    """The log cannot be used (unknown format, unreadable, or no event in it)."""


@dataclass(frozen=True, slots=True)
class Workload:
    """A real log's mapped events, or (``events`` empty) the synthetic shop."""

    customers: int
    skus: int
    source: str = "synthetic"
    events: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    unmapped: dict[str, int] = field(default_factory=dict)

    def records(self, n: int, seed: int) -> Records:
        """The first ``n`` events (a log has at most its own)."""
        if self.events:
            return iter(self.events[:n])
        shop = generate(n, seed=seed, customers=self.customers, skus=self.skus, bad=0)
        return ((r.topic_kind, r.key, r.value) for r in shop)

    def size(self, wanted: int) -> int:
        return min(wanted, len(self.events)) if self.events else wanted

    def describe(self) -> dict[str, Any]:
        if not self.events:
            return {"source": "synthetic", "customers": self.customers, "skus": self.skus}
        return {"source": self.source, "events": len(self.events), "customers": self.customers,
                "skus": self.skus, "unmapped_rows": self.unmapped}  # fmt: skip


def from_log(fmt: str, path: Path) -> Workload:
    """Map a log file; its customer and SKU counts are what it holds."""
    if fmt not in FORMATS:
        msg = f"unknown workload format {fmt!r}; choose one of {', '.join(FORMATS)}"
        raise WorkloadError(msg)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"cannot read the workload file {path}: {exc}"
        raise WorkloadError(msg) from None
    mapped, unmapped = map_rows(fmt, lines)
    if not mapped:
        msg = f"{path} has no row that maps to an event as --workload {fmt} (check the format)"
        raise WorkloadError(msg)
    events = [(m.topic_kind, m.key, m.value) for m in replay_order(mapped)]
    skus = {sku for _, _, value in events for sku in _skus(orjson.loads(value))}
    return Workload(
        customers=len({key for _, key, _ in events}), skus=len(skus),
        source=f"{fmt}:{path.name}", events=events, unmapped=dict(unmapped),
    )  # fmt: skip


def _skus(body: dict[str, Any]) -> list[str]:
    if "sku" in body:
        return [body["sku"]]
    return [line["sku"] for line in body.get("lines", ())]
