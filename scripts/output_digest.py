"""A digest over every output of a fixed in-memory Processor run (speed-ups must keep it).

    .venv/bin/python scripts/output_digest.py --events 20000 --max-skus 200
    .venv/bin/python scripts/output_digest.py --format taobao FILE --max-skus 2000
    .venv/bin/python scripts/output_digest.py --skus 100000 --customers 10000 --clock wall

Hashes, per batch, every changed state, dead letter, coupon, profile event, offer and
decision, in order (``--clock wall``: as the worker, with offsets kept and deadlines
fired at each batch's latest event time); prints the digest, the counts and the elapsed time as JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from streamcrm.decisions import CrmConfig
from streamcrm.ingest import Processor, Record
from streamcrm.learning.candidates import CandidateStats
from streamcrm.profiles_summary import hit_rates
from streamcrm.replay.adapters import map_rows
from streamcrm.replay.runner import KINDS, replay_order
from streamcrm.state import CustomerState
from streamcrm.synthetic import generate


def records(args: argparse.Namespace) -> list[tuple[str, bytes, bytes, float]]:
    if args.format:
        lines = Path(args.file).read_text().splitlines()
        mapped, _ = map_rows(args.format, lines)
        return [(m.topic_kind, m.key, m.value, m.ts) for m in replay_order(mapped)]
    extra = {"skus": args.skus} if args.skus else {}
    rows = [
        (r.topic_kind, r.key, r.value, parse_ts(orjson.loads(r.value)["ts"]))
        for r in generate(args.events, seed=args.seed, customers=args.customers, **extra)
    ]
    return sorted(rows, key=lambda row: row[3]) if args.sort else rows


def _views(before_19: bool) -> tuple[Any, Any]:
    """How states and outcome counts are hashed (see ``--before-issue-19``)."""
    if not before_19:
        return orjson.dumps, lambda outcomes: outcomes
    from streamcrm.decisions import complaint_sla, coupon_abuse, flash_sale

    new = complaint_sla.OUTCOMES | coupon_abuse.OUTCOMES | flash_sale.OUTCOMES

    def dump(state: CustomerState) -> bytes:
        data = orjson.loads(orjson.dumps(state))
        data.pop("complaints"), data.pop("abuse"), data.pop("flash", None)
        pending = data["profile"]["churn_pending"]
        if pending:  # the churn example's features, without the complaint counts
            pending[1] = [kv for kv in pending[1] if not kv[0].startswith("complaints_")]
        return orjson.dumps(data)

    return dump, lambda outcomes: {k: v for k, v in outcomes.items() if k not in new}


ISSUE_16_FIELDS = ("coupon_kind", "coupon_percent", "treated", "uplift_x", "predicted_uplift",
                   "resolved")  # fmt: skip


def _without_16(dump: Any, counted: Any) -> tuple[Any, Any, Any]:
    """States without the abandonment's issue-16 fields (and not hashed again when that was
    all that changed: a window's close changes nothing else); outcomes without uplift_learned."""
    last: dict[str, bytes] = {}

    def stripped(state: CustomerState) -> bytes:
        data = orjson.loads(dump(state))
        if data.get("abandonment"):
            for name in ISSUE_16_FIELDS:
                data["abandonment"].pop(name, None)
        return orjson.dumps(data)

    def kept(cid: str, state: CustomerState) -> bool:
        view = stripped(state)
        if last.get(cid) == view:
            return False
        last[cid] = view
        return True

    def outcomes(o: Any) -> Any:
        return {k: v for k, v in counted(o).items() if k != "uplift_learned"}

    return stripped, outcomes, kept


def parse_ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--skus", type=int, default=0)
    parser.add_argument("--max-skus", type=int, default=0, help="override the tracking cap")
    parser.add_argument("--sort", action="store_true", help="event-time order (a replay's)")
    parser.add_argument("--format")
    parser.add_argument("file", nargs="?")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--clock", choices=("event", "wall"), default="event")
    parser.add_argument(
        "--no-offer-audit", action="store_true",
        help="as a worker without --audit or an INFO decision log: offer decisions build no "
        "audit record (by default they do, so every output is hashed)",
    )  # fmt: skip
    parser.add_argument(
        "--no-offer-exposure", action="store_true",
        help="as a replay without --decisions-out: offers carry no exposure object (by "
        "default they do, as the worker's)",
    )  # fmt: skip
    parser.add_argument(
        "--before-issue-19", action="store_true",
        help="hash states without the complaints/abuse/flash sub-states and the churn example's "
        "complaint counts, and outcomes without those decisions' names: comparable with a "
        "digest taken before they were wired",
    )  # fmt: skip
    parser.add_argument(
        "--before-issue-16", action="store_true",
        help="leave out what issue 16's lift readout and uplift learner add (the abandonment's "
        "new fields, cart_resolved records, a state changed by nothing else, uplift_learned): "
        "comparable with a digest taken before them, with coupon.targeting = \"rule\"",
    )  # fmt: skip
    args = parser.parse_args()
    dump, counted = _views(args.before_issue_19)
    if args.before_issue_16:
        dump, counted, kept = _without_16(dump, counted)
    else:
        kept = lambda cid, state: True  # noqa: E731
    rows = records(args)
    crm = CrmConfig(audit_offers=not args.no_offer_audit, offer_exposure=not args.no_offer_exposure)
    processor = Processor(KINDS, crm=crm, clock=args.clock)
    if args.max_skus:
        processor.learners.candidates = CandidateStats(max_skus=args.max_skus)
    table: dict[str, CustomerState] = {}
    digest = hashlib.sha256()
    counts = {"offers": 0, "coupons": 0, "profiles": 0, "dead": 0, "decisions": 0}
    outcomes: Counter[str] = Counter()
    started = time.perf_counter()
    ts = 0.0
    for start in range(0, len(rows), args.batch):
        chunk = [
            Record(kind, 0, start + i, key, value)
            for i, (kind, key, value, _) in enumerate(rows[start : start + args.batch])
        ]
        ts = max(ts, *(row[3] for row in rows[start : start + args.batch]))
        batch = processor.process(chunk, table.get, ts)
        for cid, (_, state) in sorted(batch.states.items()):
            table[cid] = state
            if kept(cid, state):
                digest.update(cid.encode() + dump(state))
        for name, items in (
            ("dead", batch.dead_letters), ("coupons", batch.coupons),
            ("profiles", batch.profile_events), ("offers", batch.offers),
        ):  # fmt: skip
            counts[name] += len(items)
            for key, body in items:
                digest.update((key or b"") + orjson.dumps(body))
        decisions = [d for d in batch.decisions
                     if not args.before_issue_16 or d.get("kind") != "cart_resolved"]  # fmt: skip
        counts["decisions"] += len(decisions)
        for decision in decisions:
            digest.update(orjson.dumps(decision))
        digest.update(orjson.dumps(dict(sorted(counted(batch.outcomes).items()))))
        outcomes.update(batch.outcomes)
    elapsed = time.perf_counter() - started
    stats = processor.learners.candidates
    out = {
        "digest": digest.hexdigest(),
        "events": len(rows),
        "elapsed_s": round(elapsed, 2),
        "events_per_s": round(len(rows) / elapsed, 1),
        "tracked_skus": len(stats.popularity),
        "cooc_keys": len(stats.cooc),
        **counts,
        **{k: v for k, v in hit_rates(outcomes).items() if "rate" in k},
    }
    sys.stdout.write(orjson.dumps(out).decode() + "\n")


if __name__ == "__main__":
    main()
