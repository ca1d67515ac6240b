"""Flash sales as a decision: each interested customer's notices, through the contact policy.

The rules are :mod:`streamcrm.policies.flash_sale`; this adapts them to the protocol and
keeps their sub-state in ``CustomerState.flash``. A campaign does not arrive as an event
of the customer: the processor fans each announcement out (:func:`enroll`, for the
customers the partition's interest index names, :mod:`streamcrm.ingest.flash`), and the
notices are then deadlines like any other (:func:`due`, :func:`on_due`). Interest is
read from the customer's own state (recent views, cart, recent purchases within
``FlashConfig.interest_window_s``), so it is the same whichever index found the
customer. Every notice passes the contact policy as kind ``flash`` (consent, quiet
hours, an open complaint, its caps, the holdout); a refused one is counted
``flash_suppressed_<reason>`` and not sent later (suppressed, not deferred). Pure.

>>> from streamcrm.crm_config import CrmConfig
>>> from streamcrm.protocol import Context
>>> from streamcrm.state import CustomerState, View
>>> sale = policy.Campaign("fs1", ("s1",), (), 10 * 3600.0, 14 * 3600.0, 30.0, ())
>>> c = CustomerState("c1", 0.0, 0.0, recent_views=(View("s1", "shoes", 9.0, 100.0),))
>>> step = enroll(c, sale, 3600.0, CrmConfig())
>>> step.outcomes, due(step.state, CrmConfig())  # no tier: "starts now" at the start
(('flash_enrolled',), 36000.0)
>>> cfg = CrmConfig(contact=CrmConfig().contact.__class__(holdout_share=0.0))
>>> fired = on_due(step.state, 36000.0, Context(cfg, None))
>>> [(e.type, e.body["notice"]) for e in fired.emitted], fired.outcomes
([('flash_sale_notification', 'starts_now')], ('flash_notice_starts_now',))
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from streamcrm.crm_config import CrmConfig
from streamcrm.events import Event
from streamcrm.evolve import evolve
from streamcrm.policies import contact
from streamcrm.policies import flash_sale as policy
from streamcrm.policies.flash_sale_index import MAX_MATCHED_ITEMS, STRENGTH
from streamcrm.protocol import Context, Emitted, Step
from streamcrm.state import CustomerState

NAME = "flash_sale"
KIND = "flash"  # the contact policy's message kind
OUTCOMES = frozenset({
    *policy.OUTCOMES,
    "flash_already_enrolled",  # the fan-out ran again (a restart): nothing changed
    "flash_not_interested",  # the index named them, their state no longer shows it
    *(f"flash_suppressed_{reason}" for reason in contact.REASONS),
})  # fmt: skip
EMITS = frozenset({"flash_sale_notification"})
FOLLOWS: frozenset[str] = frozenset()


def with_defaults(campaign: policy.Campaign, config: CrmConfig) -> policy.Campaign:
    """The campaign with the rules' tier offsets if the announcement gave none."""
    if campaign.early_access:
        return campaign
    return replace(campaign, early_access=config.flash.early_access)


def interest_in(
    state: CustomerState, campaign: policy.Campaign, now: float, window_s: float
) -> tuple[str, tuple[str, ...]] | None:
    """The customer's strongest recent interest in the sale's SKUs or categories, and
    which of them (None: none within ``window_s``)."""
    skus, cats = set(campaign.skus), set(campaign.categories)
    best = 0
    items: dict[str, None] = {}

    def note(sku: str | None, category: str | None, kind: str, ts: float) -> None:
        nonlocal best
        if now - ts >= window_s:
            return
        for label, on_sale in ((sku, sku in skus), (category, category in cats)):
            if on_sale and label:
                items[label] = None
                best = max(best, STRENGTH[kind])

    for view in state.recent_views:
        note(view.sku, view.category, "viewed", view.ts)
    if state.cart is not None:
        for line in state.cart.lines:
            note(line.sku, line.category, "carted", state.cart.last_activity)
    if state.last_order_at is not None:
        for sku in state.recent_purchases:
            note(sku, None, "bought", state.last_order_at)
    if not best:
        return None
    names = {v: k for k, v in STRENGTH.items()}
    return names[best], tuple(items)[:MAX_MATCHED_ITEMS]


def interests(state: CustomerState) -> list[tuple[str | None, str | None, str, float]]:
    """What the interest index holds for this customer, read from their state: (sku,
    category, kind, ts) per recent view, cart line and recent purchase (the rebuild)."""
    out: list[tuple[str | None, str | None, str, float]] = [
        (v.sku, v.category, "viewed", v.ts) for v in state.recent_views
    ]
    if state.cart is not None:
        out += [
            (ln.sku, ln.category, "carted", state.cart.last_activity) for ln in state.cart.lines
        ]
    if state.last_order_at is not None:
        out += [(sku, None, "bought", state.last_order_at) for sku in state.recent_purchases]
    return out


def enrolled(flash: policy.FlashState | None, campaign: policy.Campaign) -> bool:
    """Was the customer enrolled in this very campaign (same times and discount) already?"""
    if flash is None:
        return False
    cid = campaign.campaign_id
    same = (campaign.starts_at, campaign.ends_at, campaign.discount_percent)
    mine = [n for n in flash.pending if n.campaign_id == cid]
    if mine:
        return all((n.starts_at, n.ends_at, n.discount_percent) == same for n in mine)
    return any(c == cid and end == campaign.ends_at for c, _, end in flash.sent)


def enroll(state: CustomerState, campaign: policy.Campaign, now: float, config: CrmConfig) -> Step:
    """Lay out this customer's notices for ``campaign`` at ``now``, if they are interested
    (read from their state) and not already enrolled in it."""
    cfg = config.flash
    interest = interest_in(state, campaign, now, cfg.interest_window_s)
    if interest is None:
        return Step(state, outcomes=("flash_not_interested",))
    if enrolled(state.flash, campaign):
        return Step(state, outcomes=("flash_already_enrolled",))
    tier = None if state.profile.tier == "none" else state.profile.tier
    flash, _, outcomes = policy.enroll(
        state.flash, state.customer_id, campaign, tier, interest, cfg, now
    )
    return Step(evolve(state, flash=flash), outcomes=outcomes)


def on_event(state: CustomerState, event: Event, ctx: Context) -> Step:
    return Step(state)  # enrolled by the fan-out, not by the customer's own events


def due(state: CustomerState, config: CrmConfig) -> float | None:
    return policy.due(state.flash, config.flash)


def _shopping(state: CustomerState, now: float, window_s: float) -> policy.Shopping:
    cart = state.cart.lines if state.cart is not None else ()
    views = [v for v in state.recent_views if now - v.ts < window_s]
    return policy.Shopping(
        cart=frozenset({ln.sku for ln in cart} | {ln.category for ln in cart if ln.category}),
        viewed=frozenset({v.sku for v in views} | {v.category for v in views}),
    )


def on_due(state: CustomerState, now: float, ctx: Context) -> Step:
    """Every notice due at ``now``, each through the contact policy."""
    config = ctx.config
    shopping = _shopping(state, now, config.flash.interest_window_s)
    flash, bodies, found = policy.on_due(state.flash, now, config.flash, shopping)
    if flash is None:
        return Step(state)
    outcomes = [
        o for o in found if not o.startswith("flash_notice_") or o == "flash_notice_expired"
    ]
    emitted: list[Emitted] = []
    contacted = list(flash.contacted_at)
    for body in bodies:
        verdict = _check(state, config, now, contacted)
        if verdict.allowed or verdict.holdout:
            contacted.append(now)  # would-be sends count against the caps too
        if verdict.allowed:
            emitted.append(Emitted("flash_sale_notification", body, now))
            outcomes.append(f"flash_notice_{body['notice']}")
        else:
            outcomes.append(f"flash_suppressed_{verdict.reason}")
    contacted = [t for t in contacted if now - t < 7 * contact.DAY]
    flash = replace(flash, contacted_at=tuple(contacted))
    return Step(evolve(state, flash=flash), emitted=tuple(emitted), outcomes=tuple(outcomes))


def _check(state: CustomerState, config: CrmConfig, now: float, contacted: list[float]) -> Any:
    history = contact.history(state, now) | {KIND: tuple(contacted)}
    policy_ = config.contact
    return policy_.check(
        KIND, state.customer_id, consent=policy_.consent(state.consent), history=history,
        now=now, hold=contact.hold(state, now, config.sla),
    )  # fmt: skip
