"""``streamcrm replay``: the shell around the pure replay (files, clock, progress, output)."""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from streamcrm.config import Settings
from streamcrm.replay.adapters import map_rows
from streamcrm.replay.flags import DEFAULT_EVERY_S
from streamcrm.replay.report import render
from streamcrm.replay.runner import Workers, replay
from streamcrm.rules import rules_version


def _workers(args: argparse.Namespace) -> Workers:
    count, partitions = getattr(args, "workers", 1), getattr(args, "partitions", 8)
    if not 1 <= count <= partitions:
        msg = f"--workers {count}: give 1 to --partitions ({partitions}) workers"
        raise ReplayInputError(msg)
    every, delay = getattr(args, "share_every", DEFAULT_EVERY_S), getattr(args, "share_delay", 0.0)
    if every <= 0 or delay < 0:
        msg = "--share-every must be above 0 and --share-delay at least 0 (seconds)"
        raise ReplayInputError(msg)
    if count > 1 and args.via_kafka:
        msg = "--workers works with the in-memory replay only; drop --via-kafka"
        raise ReplayInputError(msg)
    if getattr(args, "sharing", "off") == "off":
        return Workers(count, partitions)
    if args.via_kafka:
        msg = "--sharing on works with the in-memory replay only; drop --via-kafka"
        raise ReplayInputError(msg)
    return Workers(count, partitions, share_every_s=every, share_delay_s=delay)


class ReplayInputError(RuntimeError):
    """The input file cannot be read; the message says which and why."""


def run_replay(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.file)
    if not path.is_file():
        msg = f"no such file: {path} (give the path of a {args.format} log)"
        raise ReplayInputError(msg)
    out = getattr(args, "decisions_out", None)
    if out and args.via_kafka:
        msg = "--decisions-out works with the in-memory replay only; drop --via-kafka"
        raise ReplayInputError(msg)
    workers = _workers(args)
    started = time.perf_counter()
    with _batch_heap():
        summary, unmapped = _run(args, settings, path, out, workers)
    elapsed = time.perf_counter() - started
    summary |= {
        "rules_version": rules_version(settings.crm),
        "unmapped_rows": sum(unmapped.values()),
        "unmapped_by_reason": dict(unmapped),
        "elapsed_s": round(elapsed, 3),
        "events_per_s": round(summary["events"] / elapsed, 1) if elapsed > 0 else 0.0,
    }
    _print_summary(summary)
    if args.json:
        print(json.dumps(summary), flush=True)
    return 0


@contextmanager
def _batch_heap() -> Iterator[None]:
    """The worker's collector settings (:mod:`streamcrm.app.heap`) for the replay's run.

    A replay keeps every mapped record, offer and evaluation to the end, so the heap only
    grows and each full collection re-walks all of it: at the defaults a 100,000-row Taobao
    replay ran 2,100 collections, 13 full (3.9-4.3 s of 54-65 s, gc callbacks, load ~5).
    Customer states are acyclic, freed by reference counting; collecting the young
    generation every 20,000 allocations, not 700, leaves ~700 (5 full: ~0.5 s). Restored
    after.
    """
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()  # the modules and settings: never garbage, never walked again
    gc.set_threshold(20_000, 20, 10)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def _run(
    args: argparse.Namespace, settings: Settings, path: Path, out: str | None, workers: Workers
) -> tuple[dict[str, Any], Counter[str]]:
    """Map the log and replay it (in memory or through a broker): the summary, unmapped."""
    try:
        with path.open(encoding="utf-8", newline="") as lines:
            mapped, unmapped = map_rows(args.format, lines)
    except UnicodeDecodeError as exc:
        msg = f"{path} is not UTF-8 text ({exc.reason}); is --format {args.format} right?"
        raise ReplayInputError(msg) from None
    _say(f"{path.name}: {len(mapped)} events mapped, {sum(unmapped.values())} rows unmapped")
    if args.via_kafka:
        from streamcrm.replay.via_kafka import replay_via_kafka

        summary = replay_via_kafka(mapped, settings, args)
    else:
        last = [0.0]

        def progress(done: int, total: int) -> None:
            if time.perf_counter() - last[0] >= 1.0 or done == total:
                last[0] = time.perf_counter()
                _say(f"  {done}/{total} events replayed")

        with _decision_log(out) as write:
            # Offers carry their exposure (for evaluate-policy) only when written out.
            crm = replace(settings.crm, offer_exposure=write is not None)
            outcome = replay(
                mapped, crm=crm, progress=progress, decisions=write, workers=workers,
                pricing=getattr(args, "pricing", "on") == "on",
            )  # fmt: skip
        summary = outcome.summary()
        if out:
            summary["decisions_written"] = (
                summary["offers_emitted"] + summary["coupons_issued"] + summary["profile_events"]
                + summary["offer_rewards"]
            )
            _say(f"decisions written to {out}")
        if args.report:
            _write_report(
                Path(args.report),
                path.name,
                args.format,
                summary,
                outcome.timeline,
                outcome.bucket_s,
            )
    return summary, unmapped


@contextmanager
def _decision_log(path: str | None) -> Iterator[Callable[[list[dict[str, Any]]], None] | None]:
    """A writer of decisions as JSON lines to ``path`` (None: no writer)."""
    if not path:
        yield None
        return
    try:
        sink = Path(path).open("wb")  # noqa: SIM115 - closed below, whatever happens
    except OSError as exc:
        msg = f"cannot write --decisions-out {path}: {exc.strerror}"
        raise ReplayInputError(msg) from None
    with sink:

        def write(events: list[dict[str, Any]]) -> None:
            sink.writelines(orjson.dumps(e) + b"\n" for e in events)

        yield write


def _write_report(
    directory: Path, name: str, fmt: str, summary: dict[str, Any], timeline: Any, bucket_s: float
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    page = directory / "index.html"
    page.write_text(
        render(f"streamcrm replay: {name} ({fmt})", summary, timeline, bucket_s), encoding="utf-8"
    )
    _say(f"report written to {page}")


def _print_summary(summary: dict[str, Any]) -> None:
    lines = [
        f"events {summary['events']} ({summary['events_per_s']:.0f}/s), customers {summary['customers']}, "
        f"unmapped rows {summary['unmapped_rows']}, dead letters {summary['dead_letters']}",
        f"carts {summary['carts']}, abandoned {summary['carts_abandoned']}, "
        f"reminders {summary['reminded']}, coupons {summary['couponed']}, held out {summary['holdout']}, "
        f"suppressed by caps/consent {summary['suppressed']}",
        f"recovered {summary['recovered']} (after a message {summary['recovered_treated']}, "
        f"holdout {summary['recovered_holdout']}, never contacted {summary['recovered_uncontacted']}), "
        f"deadlines still pending at the end of the log {summary['timers_pending']}; "
        f"price suggestions {summary.get('price_suggestions', 0)}",
        f"lifecycle {summary.get('lifecycle')}, segments {summary.get('segments')}, tiers {summary.get('tiers')}",
        f"churn model: progressive ROC AUC {summary.get('churn_progressive_auc')} over "
        f"{summary.get('churn_labels')} resolved labels; win-back offers {summary.get('winbacks_sent')}",
    ]
    lines.extend(lift_lines(summary.get("lift") or {}))
    for line in lines:
        _say(line)


def lift_lines(lift: dict[str, Any]) -> list[str]:
    """The lift readout at the customer level, in two lines (the JSON has all of it)."""
    readout = lift.get("customer")
    if not readout:
        return []
    arms = ", ".join(
        f"{arm}: {readout[arm]['customers']} customers, {readout[arm]['carts_abandoned']} carts, "
        f"{readout[arm]['recovered']} recovered, {readout[arm]['revenue_per_abandoned_cart']} "
        f"per cart, {readout[arm]['coupons_sent']} coupons costing {readout[arm]['coupon_cost']}"
        for arm in ("treatment", "holdout")
    )
    diff = readout.get("difference")
    if diff is None:
        return [f"lift (resolved carts, by customer): {arms}; {readout.get('reason')}"]

    def ci(d: dict[str, float]) -> str:
        return f"{d['estimate']} [{d['ci_low']}, {d['ci_high']}]"

    return [
        f"lift (resolved carts, by customer): {arms}",
        f"lift: recovery {ci(diff['recovery_rate'])}, revenue per cart "
        f"{ci(diff['revenue_per_abandoned_cart'])}, incremental revenue minus coupon cost "
        f"{ci(diff['incremental_revenue_minus_coupon_cost'])} (95% CIs)",
    ]


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
