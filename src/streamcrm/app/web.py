"""The worker's web pages: ``/stats`` (JSON), ``/metrics`` (Prometheus), ``/health``,
``/ready``, ``/dashboard`` (a live page fed by server-sent events from ``/events``), all
read-only and open, and ``/customers/<id>`` (one customer's state: a bearer token, off
without one).

``/health`` answers while the process serves; ``/ready`` only once the group has
assigned this worker its partitions and every table is recovered (Faust's recovery,
our changelog catch-up and the deadline index included), and not during a rebalance:
503 otherwise. ``/stats`` answers 503 until the first recovery, since before it every
figure would read as a silent zero."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from importlib import resources
from typing import TYPE_CHECKING, Any

import faust
import orjson
from aiohttp import web as aiohttp_web
from faust.web import Request, Response, View

from streamcrm import state_codec
from streamcrm.app.metrics import WorkerCollector, render
from streamcrm.ingest import Processor
from streamcrm.learning import checkpoint
from streamcrm.policies.abandoned_cart import anonymous
from streamcrm.profiles_summary import profile_distribution
from streamcrm.web_access import access_refused

if TYPE_CHECKING:
    from streamcrm.app.factory import Runtime

SSE_INTERVAL_S = 1.0
POPULATION_TTL_S = 5.0


def readiness(
    recovered: bool, rebalancing: bool, partitions: list[int]
) -> tuple[int, dict[str, Any]]:
    """``/ready``'s status and body. ``recovered``: a recovery has completed since start.

    >>> readiness(False, False, [])
    (503, {'ready': False, 'status': 'recovering', 'partitions': []})
    >>> readiness(True, False, [0, 2])
    (200, {'ready': True, 'status': 'ready', 'partitions': [0, 2]})
    """
    if not recovered:
        status = "recovering"
    elif rebalancing:
        status = "rebalancing"
    else:
        return 200, {"ready": True, "status": "ready", "partitions": partitions}
    return 503, {"ready": False, "status": status, "partitions": partitions}


def attach_pages(app: faust.App, runtime: Runtime, customers: Any, processor: Processor) -> None:
    inputs = set(runtime.settings.topics.inputs())

    def owned() -> list[int]:
        return sorted({tp.partition for tp in app.consumer.assignment() if tp.topic in inputs})

    def ready() -> tuple[int, dict[str, Any]]:
        # Set once Faust's recovery, our on_recover catch-up included, first completes.
        recovered = app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]
        return readiness(recovered, bool(app.rebalancing), owned() if recovered else [])

    def highwater(topic: str, partition: int) -> int | None:
        for tp in app.consumer.assignment():
            if tp.topic == topic and tp.partition == partition:
                try:
                    return int(app.consumer.highwater(tp))
                except (KeyError, TypeError, ValueError, AttributeError):
                    return None
        return None

    cache: dict[str, Any] = {"at": float("-inf")}

    def population(fresh: bool = False) -> dict[str, Any]:
        """Lifecycle/segment/tier counts and state size walk every customer: at most every
        POPULATION_TTL_S, however many dashboards and scrapers ask."""
        now = time.monotonic()
        if fresh or now - cache["at"] >= POPULATION_TTL_S:
            sample = [v for _, v in zip(range(500), customers.values(), strict=False)]
            cache["value"] = profile_distribution(customers.values()) | {
                "state_bytes_per_customer": round(
                    sum(len(state_codec.encode(s)) for s in sample) / len(sample)
                )
                if sample
                else None
            }
            cache["at"] = now
        value: dict[str, Any] = cache["value"]
        return value

    collector = WorkerCollector(
        runtime.stats, processor, runtime.snapshots, lambda: len(customers), highwater,
        population, runtime.outbox, sync=runtime.sync,
    )  # fmt: skip

    def stats(fresh: bool = False, latency_since: float | None = None) -> dict[str, Any]:
        body = runtime.stats.as_dict(latency_since)
        body["customers"] = len(customers)
        body |= population(fresh)
        body["churn_auc"] = processor.learners.churn.progressive_auc()
        body["churn_labels"] = processor.learners.churn.labels
        ranker = processor.learners.ranker  # exposure: the offer-interaction model, apart
        body |= {
            "ranker_version": ranker.version, "ranker_labels": ranker.labels,
            "exposure": ranker.exposure.summary(),
        }  # fmt: skip
        body["tracked_skus"] = len(processor.learners.candidates.popularity)
        body["learner_progress"] = checkpoint.progress(processor.learners)
        body["timers_pending"] = processor.pending_timers()
        body["buffered"] = processor.buffered()
        body["clock"] = processor.clock
        body["watermark"] = processor.watermark
        body["partitions"] = owned()
        body["ready"] = ready()[0] == 200
        body["rules_version"] = runtime.rules_version
        body["lag"] = sum(
            max((highwater(t, p) or n) - n, 0) for (t, p), n in runtime.stats.next_offsets.items()
        )
        body["next_offsets"] = [[t, p, n] for (t, p), n in runtime.stats.next_offsets.items()]
        body |= {
            "sharing": None if runtime.sharing is None else runtime.sharing.stats.as_dict(),
            "pricing": None if runtime.pricing is None else runtime.pricing.as_dict(),
        }
        body["kafka_out"] = {"sent": runtime.outbox.sent, "failed": runtime.outbox.failed}
        snaps = runtime.snapshots
        body["snapshot"] = (
            None
            if snaps is None
            else {
                "writes": snaps.stats.writes,
                "errors": snaps.stats.errors,
                "pending": snaps.pending,
            }
            | (runtime.sync.as_dict() if runtime.sync else {})
        )
        return body

    @app.page("/stats")
    class StatsView(View):
        async def get(self, request: Request) -> Response:
            # ?fresh=1: recount the population now (end-of-run summaries), else <= 5 s old.
            # ?latency_since=EPOCH_S: latency quantiles of events appended from then on.
            raw = request.query.get("latency_since")
            try:
                since = None if raw is None else float(raw)
            except ValueError:
                return self.json({"error": "latency_since must be epoch seconds"}, status=400)
            status, body = ready()
            if body["status"] == "recovering":  # nothing to count yet: not a silent zero
                return self.json(body, status=status)
            return self.json(stats(request.query.get("fresh") == "1", since))

    @app.page("/health")
    class HealthView(View):
        """The web server answers: the process is up (readiness is another question)."""

        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok"})

    @app.page("/ready")
    class ReadyView(View):
        async def get(self, request: Request) -> Response:
            status, body = ready()
            return self.json(body, status=status)

    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(render(collector), content_type="text/plain; version=0.0.4")

    page = resources.files("streamcrm.app").joinpath("dashboard.html").read_bytes()

    @app.page("/dashboard")
    class DashboardView(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(page, content_type="text/html")

    @app.page("/events")
    class EventsView(View):
        """Server-sent events: the stats and the latest decisions, once a second."""

        async def get(self, request: Request) -> Any:
            stream = aiohttp_web.StreamResponse(
                headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
            )
            await stream.prepare(request)  # type: ignore[arg-type]
            try:
                while True:
                    body = stats() | {
                        "recent_decisions": public_decisions(runtime.stats.recent_decisions)
                    }
                    await stream.write(b"data: " + orjson.dumps(body) + b"\n\n")
                    await asyncio.sleep(SSE_INTERVAL_S)
            except (ConnectionResetError, asyncio.CancelledError):
                pass
            return stream

    @app.page("/candidates/{sku}")
    class CandidateView(View):
        """One SKU's candidate statistics on this worker (population data, no customer)."""

        async def get(self, request: Request, sku: str) -> Response:
            item = processor.learners.candidates.item(sku)
            if item is None:
                return self.json({"error": f"SKU {sku!r} not tracked here"}, status=404)
            keys = ("score", "at", "seq", "category", "price", "neighbours", "count")
            return self.json(dict(zip(keys, item, strict=True)))

    @app.page("/customers/{customer_id}")
    class CustomerView(View):
        async def get(self, request: Request, customer_id: str) -> Response:
            refused = access_refused(
                runtime.settings.web_token, request.headers.get("Authorization")
            )
            if refused is not None:
                status, reason = refused
                headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
                return self.json({"error": reason}, status=status, headers=headers)
            state = customers.get(customer_id)
            if state is None:
                return self.json(
                    {"error": f"customer {customer_id!r} not on this worker"}, status=404
                )
            return self.json(state.to_dict())


def public_decisions(decisions: Iterable[dict[str, Any]], n: int = 12) -> list[dict[str, Any]]:
    """The latest ``n`` decisions for the open dashboard, without the customer id (the page
    needs no token; the coupon id names a decision, ``/customers/<id>`` needs the token).

    >>> public_decisions([{"customer_id": "c1", "coupon_id": "k1", "verdict": "ok"}])
    [{'coupon_id': 'k1', 'verdict': 'ok'}]
    """
    latest = list(decisions)[-n:]
    return [anonymous(d) for d in latest]
