"""A synthetic shop whose customers answer coupons with a planted, known effect, to check
the lift readout and the uplift-targeted coupon policy against a truth.

The synthetic traffic (:mod:`streamcrm.synthetic`) is fixed in advance, so on its own no
message can change what a customer does and every true effect is zero. Here the run is
closed-loop: the records go through a :class:`~streamcrm.ingest.Processor` in event-time
batches, and each coupon it sends with an incentive on a cart of the planted segment
(``high_value``: worth ``min_value`` or more; ``low_value``: the others) is, with probability
``lift`` (drawn from the coupon id and the seed), answered by an order of the coupon's cart
two hours later that redeems the coupon. Held-out customers get no coupon, so only the
treatment arm is moved, and only through coupons in the segment. A customer who orders a
couponed cart anyway uses the code (with probability ``redeem_share``, before it expires):
the discount given away for nothing that the uplift policy's cost side counts.

The truth the readout must recover, ``planted_itt_per_cart``: the treatment arm's recovery
rate minus the same arm's in the same run without the plant (the loop is deterministic, so
that is the same customers and traffic; a planted order also changes what comes after it,
a later cart or order, which the intent-to-treat effect includes); ``planted_itt_per_customer``
the same for the share of the arm's customers with a recovered cart (the randomised unit).

>>> out = run_planted(3000, seed=3, customers=300, lift=0.5, resamples=100)
>>> out["planted_orders"] > 0, out["coupons_in_segment_share"] <= 1.0
(True, True)
"""

from __future__ import annotations

import hashlib
import heapq
import uuid
from collections import Counter
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson

from streamcrm.decisions import CrmConfig
from streamcrm.events import format_ts
from streamcrm.experiments.lift import lift_from_rows
from streamcrm.ingest import Processor, Record
from streamcrm.policies.cart_resolution import KIND
from streamcrm.replay.runner import KINDS
from streamcrm.state import CustomerState
from streamcrm.synthetic import generate

SEGMENTS = ("high_value", "low_value")
ANSWER_AFTER_S = 7200.0
DAY = 86_400.0
STEP_S = 6 * 3600.0


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _draw(coupon_id: str, seed: int) -> float:
    digest = hashlib.sha256(f"planted:{seed}:{coupon_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_segment(coupon: dict[str, Any], segment: str, min_value: float) -> bool:
    """Is this coupon's cart in the planted segment?"""
    high = float(coupon["cart"]["value"]) >= min_value
    return high if segment == "high_value" else not high


def _answer(coupon: dict[str, Any], seed: int) -> tuple[str, bytes, bytes, float]:
    """The planted order: the coupon's cart, bought with its code, two hours later."""
    at = _ts(coupon["ts"]) + ANSWER_AFTER_S
    cart = coupon["cart"]
    lines = [{**line, "category": "planted"} for line in cart["lines"]]
    rid = int.from_bytes(hashlib.sha256(f"{seed}:{coupon['coupon_id']}".encode()).digest()[:16])
    body = {
        "event_id": str(uuid.UUID(int=rid, version=4)), "type": "order_placed",
        "customer_id": coupon["customer_id"], "ts": format_ts(at), "channel": "email",
        "order_id": f"{coupon['coupon_id']}-planted", "lines": lines,
        "total": round(cart["value"], 2), "currency": "EUR", "cart_id": cart["cart_id"],
        "coupon_code": coupon["code"],
    }  # fmt: skip
    return "order", coupon["customer_id"].encode(), orjson.dumps(body), at


def run_planted(
    n_events: int,
    *,
    seed: int = 7,
    customers: int = 2000,
    lift: float = 0.3,
    segment: str = "high_value",
    min_value: float = 100.0,
    targeting: bool = False,
    crm: CrmConfig | None = None,
    batch: int = 200,
    resamples: int = 1000,
    redeem_share: float = 1.0,
    truth: bool = True,
) -> dict[str, Any]:
    """One closed-loop run; the lift readout, the planted truth (``truth``: a second run
    without the plant) and where coupons went."""
    if segment not in SEGMENTS or not (0.0 <= lift <= 1.0 and 0.0 <= redeem_share <= 1.0):
        msg = (f"segment must be one of {SEGMENTS}, lift and redeem_share in [0, 1] "
               f"(got {segment}, {lift}, {redeem_share})")  # fmt: skip
        raise ValueError(msg)
    crm = crm or CrmConfig()
    abandon = replace(crm.abandon, targeting=replace(crm.abandon.targeting, enabled=targeting))
    crm = replace(crm, abandon=abandon)
    rows: list[Row] = sorted(
        ((str(r.topic_kind), r.key, r.value, _ts(orjson.loads(r.value)["ts"]))
         for r in generate(n_events, seed=seed, customers=customers)),
        key=lambda row: row[3],
    )  # fmt: skip

    def shop(plant: float) -> _ClosedLoop:
        return _ClosedLoop(rows, crm, seed=seed, lift=plant, segment=segment,
                           min_value=min_value, redeem=redeem_share)  # fmt: skip

    loop = shop(lift)
    loop.run(batch)
    # The truth: the same shop, the same customers and traffic, with no plant (deterministic).
    base = None
    if truth:
        base = shop(0.0) if lift > 0 else loop
        if lift > 0:
            base.run(batch)
    out = _report(loop, base, crm, resamples)
    out.update(planted_lift_per_coupon=lift, segment=segment, segment_min_value=min_value,
               redeem_share=redeem_share)  # fmt: skip
    return out


def _treated_rates(resolved: list[dict[str, Any]]) -> dict[str, float] | None:
    """The treatment arm's recovery rate per cart and per customer (any cart recovered)."""
    arm = [r for r in resolved if r["arm"] == "treatment"]
    if not arm:
        return None
    customers: dict[str, bool] = {}
    for r in arm:
        customers[r["customer_id"]] = customers.get(r["customer_id"], False) or r["recovered"]
    return {"cart": sum(r["recovered"] for r in arm) / len(arm),
            "customer": sum(customers.values()) / len(customers)}  # fmt: skip


def _report(
    loop: _ClosedLoop, base: _ClosedLoop | None, crm: CrmConfig, resamples: int
) -> dict[str, Any]:
    readout = lift_from_rows(loop.resolved, resamples=resamples)
    out: dict[str, Any] = {
        "targeting": "uplift" if crm.abandon.targeting.enabled else "rule",
        "planted_orders": loop.planted,
    }
    with_plant = _treated_rates(loop.resolved)
    without = _treated_rates(base.resolved) if base is not None else None
    for unit in ("cart", "customer"):
        # The treatment arm's recovery rate with the plant minus without it: what the
        # treatment-minus-holdout readout estimates (the holdout never gets a coupon).
        truth = with_plant[unit] - without[unit] if with_plant and without else None
        diff = readout[unit].get("difference", {}).get("recovery_rate")
        out[f"planted_itt_per_{unit}"] = round(truth, 6) if truth is not None else None
        out[f"readout_covers_planted_per_{unit}"] = (
            diff["ci_low"] <= truth <= diff["ci_high"] if diff and truth is not None else None
        )
    out["readout_covers_planted"] = out["readout_covers_planted_per_cart"]
    coupons = loop.coupons
    out.update({
        "incentive_coupons": coupons["all"],
        "coupons_in_segment": coupons["in_segment"],
        "coupons_in_segment_share": _share(coupons["in_segment"], coupons["all"]),
        # Only the coupons the learner decided (uplift, explore): the rule's fallback
        # period before it was ready is left out.
        "coupons_in_segment_share_learner": _share(coupons["learner_in_segment"],
                                                   coupons["learner"]),
        "coupons_redeemed_without_plant": loop.redeemed,
        "uplift_learner_seen": loop.processor.learners.uplift.seen,
        "incentive_decisions_by_targeting": dict(sorted(loop.targeting.items())),
        "lift": readout,
    })  # fmt: skip
    return out


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


Row = tuple[str, bytes, bytes, float]  # topic kind, key, value, event time


class _ClosedLoop:
    """The records and the planted answers, merged in event time, through one Processor."""

    def __init__(
        self, rows: list[Row], crm: CrmConfig, *, seed: int, lift: float, segment: str,
        min_value: float, redeem: float,
    ) -> None:  # fmt: skip
        self.rows, self.seed, self.lift = rows, seed, lift
        self.segment, self.min_value, self.redeem = segment, min_value, redeem
        # The live coupon code per (customer, cart) and when it expires, for orders anyway.
        self.codes: dict[tuple[str, str], tuple[str, float]] = {}
        self.redeemed = 0
        self.processor = Processor(KINDS, crm=crm, clock="event")
        self.table: dict[str, CustomerState] = {}
        self.pending: list[tuple[float, int, Row]] = []
        self.resolved: list[dict[str, Any]] = []
        self.coupons = {"in_segment": 0, "all": 0, "learner": 0, "learner_in_segment": 0}
        self.targeting: Counter[str] = Counter()  # incentive-stage decisions by how targeted
        self.planted = self.i = self.offset = 0
        self.now = rows[0][3] if rows else 0.0
        # After the log, time goes on (sweeps every 6 hours) until every attribution
        # window has closed, answers to the last coupons included.
        self.end = (rows[-1][3] if rows else 0.0) + crm.abandon.attribution_window + DAY

    def run(self, batch: int) -> None:
        while self.i < len(self.rows) or self.pending or self.now < self.end:
            chunk = self._chunk(batch)
            self.now = max(row[3] for row in chunk) if chunk else min(self.now + STEP_S, self.end)
            records = [Record(k, 0, self.offset + j, key, self._redeem(k, v))
                       for j, (k, key, v, _) in enumerate(chunk)]  # fmt: skip
            self.offset += len(chunk)
            if records:
                result = self.processor.process(records, self.table.get, self.now)
            else:  # the event clock moves with events only: sweep to ``now``
                result = self.processor.sweep(self.table.get, self.now)
            for cid, (_, state) in result.states.items():
                self.table[cid] = state
            self.resolved.extend(d for d in result.decisions if d.get("kind") == KIND)
            self.targeting.update(
                f"{d['inputs']['targeting']}{'_refused' if d['rule'] == 'uplift_below_cost' else ''}"
                for d in result.decisions
                if d.get("stage") == "coupon" and "targeting" in d.get("inputs", {})
            )  # fmt: skip
            for _, coupon in result.coupons:
                self._answer(coupon)

    def _chunk(self, batch: int) -> list[Row]:
        rows, pending = self.rows, self.pending
        chunk: list[Row] = []
        while len(chunk) < batch and (self.i < len(rows) or pending):
            if pending and (self.i >= len(rows) or pending[0][0] <= rows[self.i][3]):
                if self.i >= len(rows) and pending[0][0] > self.now + STEP_S:
                    break
                chunk.append(heapq.heappop(pending)[2])
            else:
                chunk.append(rows[self.i])
                self.i += 1
        return chunk

    def _redeem(self, kind: str, value: bytes) -> bytes:
        """An order of a couponed cart, placed anyway, uses the live code (``redeem``)."""
        if kind != "order" or not self.codes:
            return value
        body = orjson.loads(value)
        key = (body.get("customer_id"), body.get("cart_id"))
        code = self.codes.get(key)
        if body.get("type") != "order_placed" or code is None or "coupon_code" in body:
            return value
        if (
            _ts(body["ts"]) > code[1]
            or _draw(f"redeem:{body['order_id']}", self.seed) >= self.redeem
        ):
            return value
        self.redeemed += 1
        del self.codes[key]
        return orjson.dumps({**body, "coupon_code": code[0]})

    def _answer(self, coupon: dict[str, Any]) -> None:
        if coupon["discount"]["kind"] == "none":
            return
        expires = _ts(coupon["expires_at"]) if coupon.get("expires_at") else float("inf")
        self.codes[(coupon["customer_id"], coupon["cart"]["cart_id"])] = (coupon["code"], expires)
        by_learner = coupon["reason"]["inputs"].get("targeting") in ("uplift", "explore")
        seg = in_segment(coupon, self.segment, self.min_value)
        self.coupons["all"] += 1
        self.coupons["learner"] += by_learner
        self.coupons["in_segment"] += seg
        self.coupons["learner_in_segment"] += by_learner and seg
        if not seg:
            return
        if _draw(coupon["coupon_id"], self.seed) < self.lift:
            del self.codes[(coupon["customer_id"], coupon["cart"]["cart_id"])]  # used by it
            order = _answer(coupon, self.seed)
            heapq.heappush(self.pending, (order[3], self.planted, order))
            self.planted += 1
