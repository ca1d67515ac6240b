"""Abandoned carts: when a cart counts as abandoned, which stage is due, what to send,
and what a later order means. Pure: every function takes the state and ``now``.

A non-empty cart with no cart, checkout or order activity for ``abandon_after`` is
abandoned (counted once per cart id). Stages fire at ``last_activity + stage.after``,
each at most once per cart version; any cart change re-arms them, an order or a clear
closes the cart so nothing more fires. An incentive, though, is given at most once per
cart and once per customer in ``incentive_window`` (30 days by default): a re-armed
incentive stage sends a plain reminder instead and counts why
(``incentive_withheld_once_per_cart``, ``incentive_withheld_once_per_customer_window``), so
editing a cart cannot farm coupons; so does a coupon-abuse flag
(``incentive_withheld_anomaly_flag``, :mod:`streamcrm.policies.coupon_abuse`). A holdout decision that would have carried an
incentive counts as one, so both arms meet the same rule. Decision times are the due times, not the moment a
sweep happened to run, so a replay decides exactly as live operation would.

>>> from streamcrm.state import Cart, CartLine, CustomerState
>>> cart = Cart("k1", (CartLine("s1", 1, 80.0),), version=1, last_activity=0.0)
>>> state = CustomerState("c1", 0.0, 0.0, cart=cart)
>>> config, contact = AbandonConfig(), ContactConfig(holdout_share=0.0)
>>> next_due(state, config)  # abandoned after 30 minutes
1800.0
>>> fired = fire_due(state, now=90_000.0, config=config, contact=contact)
>>> fired.outcomes
['cart_abandoned', 'itt_abandoned_treatment', 'reminded', 'couponed']
>>> [(c["stage"], c["discount"]["kind"]) for c in fired.coupons]
[('reminder', 'none'), ('coupon', 'percent')]
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

from streamcrm.events import Event, format_ts
from streamcrm.policies.cart_resolution import Example, pack, resolution_due, resolve
from streamcrm.policies.complaint_sla import SlaConfig
from streamcrm.policies.contact import DAY, ContactConfig, history, hold
from streamcrm.policies.coupon import (
    CouponInputs,
    CouponRule,
    PropensityModel,
    RulePropensity,
    propensity_features,
)
from streamcrm.policies.coupon_abuse import blocks_incentives
from streamcrm.policies.coupon_uplift import UpliftScorer, UpliftTargeting, target, uplift_features
from streamcrm.state import MAX_MONEY, Abandonment, Contact, CustomerState


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    after: float  # seconds since the cart's last activity
    incentive: bool  # False: a plain reminder, never a discount


@dataclass(frozen=True, slots=True)
class AbandonConfig:
    abandon_after: float = 1800.0
    stages: tuple[Stage, ...] = (Stage("reminder", 3600.0, False), Stage("coupon", DAY, True))
    attribution_window: float = 7 * DAY
    coupon_ttl: float = 7 * DAY
    incentive_window: float = 30 * DAY  # at most one incentive per customer in this
    rule: CouponRule = field(default_factory=CouponRule)
    propensity: PropensityModel = field(default_factory=RulePropensity)
    targeting: UpliftTargeting = field(default_factory=UpliftTargeting)  # coupon.targeting

    def __post_init__(self) -> None:
        afters = [s.after for s in self.stages]
        if afters != sorted(afters) or (afters and afters[0] < self.abandon_after):
            msg = "stages must be in time order and none before abandon_after"
            raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class Fired:
    state: CustomerState
    coupons: list[dict[str, Any]]
    outcomes: list[str]
    decisions: list[dict[str, Any]]  # every stage decision with its inputs (the audit log)
    examples: list[Example] = field(default_factory=list)  # for the uplift learner


def next_due(state: CustomerState, config: AbandonConfig) -> float | None:
    """When this customer's next abandonment step is due, or None if nothing is pending."""
    resolving = resolution_due(state.abandonment, config.attribution_window)
    stage = _next_stage(state, config)
    if resolving is None or (stage is not None and stage < resolving):
        return stage
    return resolving


def _next_stage(state: CustomerState, config: AbandonConfig) -> float | None:
    cart = state.cart
    if cart is None or not cart.lines:
        return None
    ab = state.abandonment
    if ab is None or ab.cart_id != cart.cart_id or ab.abandoned_at is None:
        return cart.last_activity + config.abandon_after
    fired = ab.stages_fired if ab.cart_version == cart.version else ()
    for stage in config.stages:
        if stage.name not in fired:
            return cart.last_activity + stage.after
    return None


def fire_due(
    state: CustomerState,
    now: float,
    config: AbandonConfig,
    contact: ContactConfig,
    sla: SlaConfig | None = None,
    uplift: UpliftScorer | None = None,
) -> Fired:
    """Take every step due at or before ``now``, in order, through the contact policy
    (``sla``: how long an open complaint holds marketing back, :func:`contact.hold`;
    ``uplift``: the learner incentives are targeted with, if ``config.targeting`` is on)."""
    coupons: list[dict[str, Any]] = []
    outcomes: list[str] = []
    decisions: list[dict[str, Any]] = []
    examples: list[Example] = []
    due = next_due(state, config)
    while due is not None and due <= now:
        cart = state.cart
        ab = state.abandonment
        new_cart = cart is not None and (
            ab is None or ab.cart_id != cart.cart_id or ab.abandoned_at is None
        )
        if due == resolution_due(ab, config.attribution_window) or (
            new_cart and resolution_due(ab, config.attribution_window) is not None
        ):  # the window closed unrecovered, or the next cart is abandoned first
            state, record, example = resolve(
                state, due, revenue=None, redeemed=False, arm=arm_of(state, contact)
            )
            decisions.append(record)
            examples.extend([example] if example else [])
        elif new_cart:
            assert cart is not None
            last = ab.last_incentive_at if ab is not None else None
            state = replace(
                state,
                abandonment=Abandonment(cart.cart_id, cart.version, due, last_incentive_at=last),
            )
            outcomes.extend(("cart_abandoned", f"itt_abandoned_{arm_of(state, contact)}"))
        else:
            stage = _due_stage(state, config)
            state, coupon, outcome, decision = _run_stage(
                state, stage, due, config, contact, sla, uplift
            )
            if decision.get("withheld"):
                outcomes.append(f"incentive_withheld_{decision['withheld']}")
            outcomes.append(outcome)
            decisions.append(decision)
            if coupon is not None:
                coupons.append(coupon)
        due = next_due(state, config)
    return Fired(state, coupons, outcomes, decisions, examples)


def _due_stage(state: CustomerState, config: AbandonConfig) -> Stage:
    cart, ab = state.cart, state.abandonment
    assert cart is not None and ab is not None
    fired = ab.stages_fired if ab.cart_version == cart.version else ()
    return next(s for s in config.stages if s.name not in fired)


def _run_stage(
    state: CustomerState,
    stage: Stage,
    at: float,
    config: AbandonConfig,
    contact: ContactConfig,
    sla: SlaConfig | None,
    uplift: UpliftScorer | None = None,
) -> tuple[CustomerState, dict[str, Any] | None, str, dict[str, Any]]:
    cart, ab = state.cart, state.abandonment
    assert cart is not None and ab is not None
    fired = ab.stages_fired if ab.cart_version == cart.version else ()
    state = replace(
        state, abandonment=replace(ab, cart_version=cart.version, stages_fired=(*fired, stage.name))
    )
    x = CouponInputs(
        cart_value=cart.value,
        order_count=state.order_count,
        coupons_redeemed=state.coupons_redeemed,
        propensity=config.propensity.predict_one(propensity_features(state, at)),
    )
    withheld = None
    if stage.incentive:  # a coupon-abuse flag withholds it as the once-only rules do
        flagged = blocks_incentives(state.abuse, at)
        withheld = "anomaly_flag" if flagged else incentive_withheld(ab, at, config.incentive_window)
    decision = config.rule.decide(x, incentive=stage.incentive and withheld is None)
    coupon_id = coupon_id_for(state.customer_id, cart.cart_id, cart.version, stage.name)
    x_up: dict[str, float] | None = None
    if config.targeting.enabled and stage.incentive:
        x_up = uplift_features(state, at)
        decision = target(decision, x_up, coupon_id, config.targeting, uplift)
    # Coupons and plain reminders are separate kinds: a 1 h reminder must not use up
    # the day's allowance of the 24 h coupon (policies/contact.py).
    is_coupon = decision.kind != "none"
    kind = "coupon" if is_coupon else "reminder"
    sent = history(state, at)
    sent_at = sent[kind]
    verdict = contact.check(
        kind, state.customer_id, consent=contact.consent(state.consent), history=sent, now=at,
        hold=hold(state, at, sla),
    )  # fmt: skip
    audit = {
        "coupon_id": coupon_id,
        "customer_id": state.customer_id,
        "stage": stage.name,
        "at": at,
        "verdict": verdict.reason,
        "rule": decision.rule,
        "inputs": decision.inputs,
        "withheld": withheld,
    }
    if not verdict.allowed and not verdict.holdout:
        return state, None, f"suppressed_{verdict.reason}", audit
    if cart.value > MAX_MONEY:  # a coupon could not state it (schema maximum): none is sent
        return state, None, "suppressed_cart_value_out_of_range", audit
    marked = state.abandonment
    assert marked is not None  # set above
    if x_up is not None:  # the uplift learner's example: features now, outcome at resolution
        predicted = decision.inputs.get("predicted_uplift")
        marked = replace(marked, uplift_x=pack(x_up), predicted_uplift=predicted)
    if is_coupon:  # given (or, held out, would have been): the once-only rules count it
        marked = replace(
            marked, incentive_given=True, last_incentive_at=at, coupon_kind=decision.kind,
            coupon_percent=decision.percent, treated=marked.treated or not verdict.holdout,
        )  # fmt: skip
    state = replace(state, abandonment=marked)
    code = code_for(coupon_id) if is_coupon else None
    expires = at + config.coupon_ttl if code else None
    made = Contact(coupon_id, cart.cart_id, stage.name, code, at, verdict.holdout, expires)
    # A holdout decision is a would-be send: it counts against the caps exactly as a real
    # send does, so both arms see the same policy except for the message itself.
    times = (*sent_at, at)
    state = replace(state, last_contact=made)
    state = (
        replace(state, coupons_sent_at=times)
        if is_coupon
        else replace(state, reminders_sent_at=times)
    )
    if verdict.holdout:
        # Recorded, not sent: the control group tells us what happens without a message.
        return state, None, "holdout", audit
    event = {
        "event_id": coupon_id,
        "type": "coupon_issued",
        "customer_id": state.customer_id,
        "ts": format_ts(at),
        "coupon_id": coupon_id,
        "stage": stage.name,
        "code": code,
        "discount": {"kind": decision.kind, "percent": decision.percent},
        "expires_at": format_ts(expires) if expires is not None else None,
        "cart": {
            "cart_id": cart.cart_id,
            "version": cart.version,
            "value": cart.value,
            "lines": [
                {"sku": line.sku, "qty": line.qty, "unit_price": line.unit_price}
                for line in cart.lines
            ],
        },
        "channel": "email",
        "reason": {"rule": decision.rule, "inputs": decision.inputs},
    }
    return state, event, "couponed" if code else "reminded", audit


def arm_of(state: CustomerState, contact: ContactConfig) -> str:
    """The customer's arm of the experiment (``treatment`` or ``holdout``): assigned by a
    stable hash, so an intent-to-treat readout can count every abandoned cart by arm
    whether or not a message was decided or sent."""
    return "holdout" if contact.held_out(state.customer_id) else "treatment"


# Why an incentive stage sent a plain reminder: incentive_withheld's reasons, and a flag.
WITHHELD = ("once_per_cart", "once_per_customer_window", "anomaly_flag")


def incentive_withheld(ab: Abandonment, at: float, window: float) -> str | None:
    """Why an incentive may not be given at ``at``, or None if it may.

    >>> incentive_withheld(Abandonment("k1", 2, 0.0, incentive_given=True), 10.0, 30.0)
    'once_per_cart'
    >>> incentive_withheld(Abandonment("k2", 1, 0.0, last_incentive_at=0.0), 10.0, 30.0)
    'once_per_customer_window'
    >>> incentive_withheld(Abandonment("k2", 1, 0.0, last_incentive_at=0.0), 40.0, 30.0) is None
    True
    """
    if ab.incentive_given:
        return "once_per_cart"
    if ab.last_incentive_at is not None and at - ab.last_incentive_at < window:
        return "once_per_customer_window"
    return None


def anonymous(decision: dict[str, Any]) -> dict[str, Any]:
    """A stage decision's audit record without the customer id: what logs at INFO and the
    open dashboard may show (the coupon id still names the decision).

    >>> anonymous({"customer_id": "c1", "coupon_id": "k1", "verdict": "ok"})
    {'coupon_id': 'k1', 'verdict': 'ok'}
    """
    return {k: v for k, v in decision.items() if k != "customer_id"}


def coupon_id_for(customer_id: str, cart_id: str, version: int, stage: str) -> str:
    """Deterministic: a redelivery or a crash before commit can only re-send the same id.

    >>> coupon_id_for("c1", "k1", 3, "coupon") == coupon_id_for("c1", "k1", 3, "coupon")
    True
    """
    digest = hashlib.sha256(f"{customer_id}|{cart_id}|{version}|{stage}".encode()).hexdigest()
    return f"cpn-{digest[:24]}"


def code_for(coupon_id: str) -> str:
    """A short, unguessable-enough code derived from the coupon id (also deterministic)."""
    raw = hashlib.sha256(f"code:{coupon_id}".encode()).digest()
    return "SC-" + base64.b32encode(raw).decode()[:10]


def after_event(
    before: CustomerState | None,
    after: CustomerState,
    event: Event,
    config: AbandonConfig,
    contact: ContactConfig,
) -> tuple[CustomerState, list[str], list[dict[str, Any]], list[Example]]:
    """Outcomes of an applied event: new carts, recoveries, redemptions; a recovery's
    ``cart_resolved`` record and uplift example."""
    outcomes: list[str] = []
    records: list[dict[str, Any]] = []
    examples: list[Example] = []
    if event.type == "cart_item_added":
        old = before.cart.cart_id if before and before.cart else None
        if (
            after.cart is not None
            and after.cart.cart_id != old
            and after.cart.cart_id == event.body["cart_id"]
        ):
            outcomes.append("cart_started")
    elif event.type == "order_placed":
        after, outcomes = _attribute_order(after, event, config, contact)
        ab = after.abandonment
        if outcomes and ab is not None and not ab.resolved:
            total = event.body.get("total")
            revenue = float(total) if isinstance(total, int | float) else 0.0
            after, record, example = resolve(
                after, event.ts, revenue=revenue, redeemed="redeemed" in outcomes,
                arm=arm_of(after, contact), targeting=config.targeting,
            )  # fmt: skip
            records.append(record)
            examples.extend([example] if example else [])
    return after, outcomes, records, examples


def _attribute_order(
    state: CustomerState, event: Event, config: AbandonConfig, contact: ContactConfig
) -> tuple[CustomerState, list[str]]:
    ab = state.abandonment
    if ab is None or ab.abandoned_at is None or ab.recovered or ab.resolved:
        return state, []
    if not 0 <= event.ts - ab.abandoned_at <= config.attribution_window:
        return state, []
    outcomes = [f"itt_recovered_{arm_of(state, contact)}"]
    last = state.last_contact
    if (
        last is None
        or last.cart_id != ab.cart_id
        or event.ts - last.at > config.attribution_window
    ):
        outcomes.append("recovered_uncontacted")
    elif last.holdout:
        outcomes.append("recovered_holdout")
    else:
        outcomes.append("recovered_treated")
    redeemed = (
        last is not None
        and last.code is not None
        and event.body.get("coupon_code") == last.code
    )
    if redeemed:
        outcomes.append("redeemed")
    return replace(
        state,
        abandonment=replace(ab, recovered=True),
        coupons_redeemed=state.coupons_redeemed + (1 if redeemed else 0),
    ), outcomes
