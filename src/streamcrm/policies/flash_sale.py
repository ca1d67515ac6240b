"""Flash sales: the campaign, and each interested customer's notices. Pure.

A ``flash_sale_announced`` (broadcast on ``storefront.campaigns``, keyed by campaign id)
becomes a :class:`Campaign` (:func:`decode_announcement`). Each worker finds the
customers of its partitions interested in it (:mod:`streamcrm.policies.flash_sale_index`)
and enrolls each (:func:`enroll`), which lays out their notices as durable deadlines in
their state:

- ``early_access`` at ``starts_at - before_s`` of the customer's tier, if the campaign
  gives that tier early access (at once if that moment has passed but the sale has not
  started);
- ``starts_now`` at ``starts_at``, for those who had no early access;
- ``last_chance`` ``last_chance_s`` (default 1 h) before ``ends_at``, sent only if a
  sale item is then still in the customer's cart or among their recent views
  (:class:`Shopping`, passed in at firing time).

:func:`due` and :func:`on_due` are the protocol's (issue 15); emitted notifications go
through the contact policy in the shell. A later announcement with the same campaign id
replaces the earlier notices. State per customer is bounded (``max_campaigns``, the
soonest-ending kept). Wired as :mod:`streamcrm.decisions.flash_sale` (the contact policy,
the customer's view of their interest, the worker's fan-out).

>>> raw = (b'{"event_id":"a1","type":"flash_sale_announced","ts":"2026-11-03T08:00:00Z",'
...        b'"campaign_id":"fs1","skus":["s1"],"starts_at":"2026-11-03T18:00:00Z",'
...        b'"ends_at":"2026-11-03T22:00:00Z","discount_percent":30,'
...        b'"early_access":[{"tier":"gold","before_s":3600}]}')
>>> campaign = decode_announcement(raw, key=b"fs1")
>>> s, _, _ = enroll(None, "c1", campaign, "gold", ("carted", ("s1",)), FlashConfig(), now=0.0)
>>> [(n.kind, format_ts(n.due_at)) for n in s.pending]
[('early_access', '2026-11-03T17:00:00.000Z'), ('last_chance', '2026-11-03T21:00:00.000Z')]
>>> s, out, outcomes = on_due(s, campaign.starts_at - 3600, FlashConfig(), Shopping())
>>> out[0]["notice"], out[0]["reason"]["rule"], outcomes
('early_access', 'early_access_gold', ('flash_notice_early_access',))
>>> s, out, outcomes = on_due(s, campaign.ends_at - 3600, FlashConfig(), Shopping())
>>> out, outcomes  # nothing of the sale in the cart or recent views any more
((), ('flash_last_chance_skipped',))
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Any

import jsonschema_rs
import orjson

from streamcrm.contract import describe_error, validator
from streamcrm.events import (
    INVALID_JSON,
    KEY_MISMATCH,
    NOT_AN_OBJECT,
    SCHEMA_VIOLATION,
    InvalidEvent,
    format_ts,
    parse_ts,
)

KINDS = ("early_access", "starts_now", "last_chance")
MAX_SENT = 64
OUTCOMES = (
    "flash_enrolled",
    "flash_enroll_after_end",  # announced (or replayed) too late: nothing to send
    "flash_notice_expired",  # fired only after its sale had ended (a long outage): dropped
    "flash_campaign_dropped_over_cap",
    "flash_notice_early_access",
    "flash_notice_starts_now",
    "flash_notice_last_chance",
    "flash_last_chance_skipped",  # nothing of the sale left in cart or recent views
)


@dataclass(frozen=True, slots=True)
class FlashConfig:
    last_chance_s: float = 3600.0
    max_campaigns: int = 8  # campaigns with pending notices per customer
    # Sent notices are remembered this long past their sale's end (at most MAX_SENT), so a
    # campaign re-announced with a later end does not repeat them.
    sent_memory_s: float = 7 * 86_400.0
    # Tier early access when an announcement lists none (seconds before the start).
    early_access: tuple[tuple[str, float], ...] = (("platinum", 7200.0), ("gold", 3600.0))
    # Views, cart adds and purchases this recent make a customer interested in a sale.
    interest_window_s: float = 14 * 86_400.0


@dataclass(frozen=True, slots=True)
class Campaign:
    campaign_id: str
    skus: tuple[str, ...]
    categories: tuple[str, ...]
    starts_at: float
    ends_at: float
    discount_percent: float
    early_access: tuple[tuple[str, float], ...]  # (tier, seconds before the start)
    announced_at: float = 0.0  # the announcement's ts (the event clock fans out at it)

    def early_for(self, tier: str | None) -> float | None:
        return next((before for t, before in self.early_access if t == tier), None)


def decode_announcement(raw: bytes | None, *, key: bytes | None) -> Campaign:
    """Validate one campaign record; :class:`InvalidEvent` with a stable reason if bad."""
    try:
        body = orjson.loads(raw or b"")
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(INVALID_JSON, f"not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise InvalidEvent(NOT_AN_OBJECT, f"expected a JSON object, got {type(body).__name__}")
    try:
        validator("flash_sale_announced").validate(body)
    except jsonschema_rs.ValidationError as exc:
        raise InvalidEvent(SCHEMA_VIOLATION, f"flash_sale_announced: {describe_error(exc)}", body) from None
    if (key or b"").decode("utf-8", "replace") != body["campaign_id"]:
        raise InvalidEvent(KEY_MISMATCH, f"record key {key!r} != campaign_id {body['campaign_id']!r}", body)
    starts, ends = parse_ts(body["starts_at"]), parse_ts(body["ends_at"])
    if ends <= starts:
        raise InvalidEvent(SCHEMA_VIOLATION, "ends_at must be after starts_at", body)
    return Campaign(
        body["campaign_id"],
        tuple(body.get("skus", ())),
        tuple(body.get("categories", ())),
        starts,
        ends,
        float(body["discount_percent"]),
        tuple((e["tier"], float(e["before_s"])) for e in body.get("early_access", ())),
        parse_ts(body["ts"]),
    )


@dataclass(frozen=True, slots=True)
class Notice:
    campaign_id: str
    kind: str
    due_at: float
    starts_at: float
    ends_at: float
    discount_percent: float
    interest: str
    items: tuple[str, ...]
    tier: str | None = None


@dataclass(frozen=True, slots=True)
class FlashState:
    customer_id: str
    pending: tuple[Notice, ...] = ()  # soonest first
    # (campaign id, kind, sale end) of notices sent, kept ``sent_memory_s`` past the end:
    # a re-announced campaign does not send them again.
    sent: tuple[tuple[str, str, float], ...] = ()
    # When notices were sent (or, held out, would have been): the contact policy's caps.
    contacted_at: tuple[float, ...] = ()


def state_from_dict(data: dict[str, Any] | None) -> FlashState | None:
    """The inverse of the JSON form orjson gives a :class:`FlashState` (the changelog's)."""
    if not data:
        return None
    pending = tuple(
        Notice(**{**n, "items": tuple(n["items"])}) for n in data.get("pending", ())
    )
    sent = tuple((c, k, float(e)) for c, k, e in data.get("sent", ()))
    contacted = tuple(float(t) for t in data.get("contacted_at", ()))
    return FlashState(data["customer_id"], pending, sent, contacted)


@dataclass(frozen=True, slots=True)
class Shopping:
    """What the customer has at firing time: SKUs in the cart, recently viewed SKUs and
    categories (from the customer state)."""

    cart: frozenset[str] = frozenset()
    viewed: frozenset[str] = frozenset()


Step = tuple[FlashState | None, tuple[dict[str, Any], ...], tuple[str, ...]]


def enroll(
    state: FlashState | None,
    customer_id: str,
    campaign: Campaign,
    tier: str | None,
    interest: tuple[str, tuple[str, ...]],
    cfg: FlashConfig,
    now: float,
) -> Step:
    """Lay out one interested customer's notices for ``campaign`` at ``now`` (replacing
    earlier ones for the same campaign)."""
    if now >= campaign.ends_at:
        return state, (), ("flash_enroll_after_end",)
    current = state or FlashState(customer_id)
    kept = tuple(n for n in current.pending if n.campaign_id != campaign.campaign_id)
    early = campaign.early_for(tier) if now < campaign.starts_at else None
    strength, items = interest

    def notice(kind: str, at: float) -> Notice:
        return Notice(campaign.campaign_id, kind, at, campaign.starts_at, campaign.ends_at,
                      campaign.discount_percent, strength, items, tier)  # fmt: skip

    mine = [notice("early_access" if early else "starts_now", campaign.starts_at - (early or 0.0))]
    last = campaign.ends_at - cfg.last_chance_s
    if last > campaign.starts_at:
        mine.append(notice("last_chance", last))
    done = {kind for cid, kind, _ in current.sent if cid == campaign.campaign_id}
    if done & {"early_access", "starts_now"}:  # told once that the sale is on is enough
        done |= {"early_access", "starts_now"}
    mine = [n for n in mine if n.kind not in done]
    pending = tuple(sorted((*kept, *mine), key=lambda n: (n.due_at, n.campaign_id, n.kind)))
    outcomes: tuple[str, ...] = ("flash_enrolled",)
    campaigns = list(dict.fromkeys(n.campaign_id for n in sorted(pending, key=lambda n: n.ends_at)))
    if len(campaigns) > cfg.max_campaigns:
        keep = set(campaigns[: cfg.max_campaigns])
        pending = tuple(n for n in pending if n.campaign_id in keep)
        outcomes += ("flash_campaign_dropped_over_cap",)
    # Remember what was sent until the (possibly moved) end of this campaign.
    same = campaign.campaign_id
    sent = tuple((c, k, campaign.ends_at if c == same else end) for c, k, end in current.sent)
    return replace(current, pending=pending, sent=sent), (), outcomes


def due(state: FlashState | None, cfg: FlashConfig) -> float | None:
    return state.pending[0].due_at if state is not None and state.pending else None


def on_due(state: FlashState | None, now: float, cfg: FlashConfig, shopping: Shopping) -> Step:
    """Send every notice due at ``now`` (a notice whose sale has ended is dropped)."""
    if state is None:
        return None, (), ()
    emitted: list[dict[str, Any]] = []
    outcomes: list[str] = []
    rest = []
    sent = [x for x in state.sent if x[2] + cfg.sent_memory_s > now][-MAX_SENT:]
    for n in state.pending:
        if n.due_at > now:
            rest.append(n)
            continue
        if now >= n.ends_at:
            outcomes.append("flash_notice_expired")
            continue
        send = n
        if n.kind == "last_chance":
            left = [i for i in n.items if i in shopping.cart or i in shopping.viewed]
            if not left:
                outcomes.append("flash_last_chance_skipped")
                continue
            send = replace(n, items=tuple(left))
        emitted.append(notification(state.customer_id, send))
        outcomes.append(f"flash_notice_{n.kind}")
        sent.append((n.campaign_id, n.kind, n.ends_at))
    return replace(state, pending=tuple(rest), sent=tuple(sent)), tuple(emitted), tuple(outcomes)


def _event_id(campaign_id: str, customer_id: str, kind: str) -> str:
    text = f"fsn-{campaign_id}-{customer_id}-{kind}"
    if len(text) <= 128:
        return text
    digest = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    return f"fsn-{kind}-{digest}"  # long ids: still deterministic, within the schema's 128


def notification(customer_id: str, n: Notice) -> dict[str, Any]:
    rule = {"early_access": f"early_access_{n.tier}", "starts_now": "interested_starts_now",
            "last_chance": "last_chance_in_cart_or_viewed"}[n.kind]  # fmt: skip
    reason: dict[str, Any] = {"rule": rule[:64], "interest": n.interest, "items": list(n.items)}
    if n.tier:
        reason["tier"] = n.tier
    return {
        "event_id": _event_id(n.campaign_id, customer_id, n.kind),
        "type": "flash_sale_notification",
        "customer_id": customer_id,
        "ts": format_ts(n.due_at),
        "campaign_id": n.campaign_id,
        "notice": n.kind,
        "starts_at": format_ts(n.starts_at),
        "ends_at": format_ts(n.ends_at),
        "discount_percent": n.discount_percent,
        "reason": reason,
    }
