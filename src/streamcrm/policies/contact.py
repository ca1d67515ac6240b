"""Contact policy: one for every message kind. Pure.

May we send this customer a message of this kind now? In order: consent (the customer's
own, else ``consent_default``), quiet hours (optional; pushed kinds only), an open
complaint (marketing kinds; :func:`hold`), the kind's own
caps, the caps across the shared kinds, then the holdout group (a stable hash: held-out
customers are never sent anything, but their would-be sends are recorded and count
against the caps as real sends do, so both arms meet the same policy).

Kinds and their defaults (:data:`DEFAULT_KINDS`):

- ``coupon`` and ``winback``: pushed marketing (e-mail); each capped on its own and
  together by ``max_per_day`` / ``max_per_week`` (one a day, three a week by default);
  a win-back at most once a week.
- ``reminder``: the plain reminder of the customer's own cart; its own caps (the same
  numbers), and outside the shared caps, so a 1 h reminder does not use up the day's
  allowance of the 24 h coupon.
- ``offer``: on-site recommendations, shown while the customer is on the site; never in
  the shared marketing caps (a coupon e-mail must not blank the shop's recommendations)
  and never in quiet hours (the customer is there), but capped on their own
  (``offer_per_day``, ``offer_per_week``) so one session cannot flood a customer's
  feed with reshuffled lists.

>>> policy = ContactConfig(holdout_share=0.0)
>>> policy.check("coupon", "c1", consent=True, history={}, now=100_000.0).allowed
True
>>> policy.check("coupon", "c1", consent=True, history={"coupon": (99_000.0,)}, now=100_000.0).reason
'cap_24h'
>>> policy.check("winback", "c1", consent=True, history={"coupon": (99_000.0,)}, now=100_000.0).reason
'total_cap_24h'
>>> policy.check("reminder", "c1", consent=True, history={"coupon": (99_000.0,)}, now=100_000.0).allowed
True
>>> policy.check("coupon", "c1", consent=False, history={}, now=100_000.0).reason
'no_consent'
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from streamcrm.policies.complaint_sla import SlaConfig, suppresses_marketing

if TYPE_CHECKING:
    from streamcrm.state import CustomerState

DAY = 86_400.0
HOUR = 3600.0
# Every reason a verdict can give (outcome names are built from them).
REASONS = (
    "no_consent", "quiet_hours", "complaint_open", "cap_24h", "cap_7d", "total_cap_24h",
    "total_cap_7d", "holdout",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class KindRule:
    """One message kind: its own caps (None: the shared ``max_per_day``/``max_per_week``),
    whether it counts in the shared caps, whether quiet hours hold it back, whether it is
    marketing (held back while the customer has an open complaint, :func:`hold`)."""

    per_day: int | None = None
    per_week: int | None = None
    shared: bool = True
    quiet: bool = True
    marketing: bool = True


DEFAULT_KINDS: dict[str, KindRule] = {
    "coupon": KindRule(),
    "reminder": KindRule(shared=False),
    "winback": KindRule(per_week=1),
    "offer": KindRule(per_day=20, per_week=100, shared=False, quiet=False, marketing=False),
    # Flash-sale notices (decisions/flash_sale.py): pushed marketing with caps of their
    # own (an early access or starts-now notice and a last chance fit in a day).
    "flash": KindRule(per_day=2, per_week=6, shared=False),
}
KINDS = tuple(DEFAULT_KINDS)


@dataclass(frozen=True, slots=True)
class Verdict:
    """``allowed`` to send; otherwise ``reason`` says why not. ``holdout`` customers are
    never sent anything, but their decisions are recorded so lift can be measured."""

    allowed: bool
    reason: str
    holdout: bool = False


def in_holdout(customer_id: str, share: float, salt: str = "streamcrm-holdout-v1") -> bool:
    """Stable assignment: the same customer is always in (or out of) the control group.

    A hash, not a random draw, so every worker and every replay agrees without state.

    >>> in_holdout("c1", 0.0), in_holdout("c1", 1.0)
    (False, True)
    """
    digest = hashlib.blake2b(f"{salt}:{customer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < share


@dataclass(frozen=True, slots=True)
class ContactConfig:
    consent_default: bool = True  # for customers who never stated their consent
    holdout_share: float = 0.10
    holdout_salt: str = "streamcrm-holdout-v1"
    max_per_day: int = 1  # across the shared kinds, and each kind's own default
    max_per_week: int = 3
    kinds: Mapping[str, KindRule] = field(default_factory=lambda: dict(DEFAULT_KINDS))
    # (start, end) local hours, e.g. (21, 8): no pushed message from 21:00 to 08:00 at
    # ``utc_offset_h``; suppressed, not deferred. None: no quiet hours.
    quiet_hours: tuple[int, int] | None = None
    utc_offset_h: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.holdout_share <= 1.0:
            msg = f"holdout_share must be between 0 and 1 (got {self.holdout_share})"
            raise ValueError(msg)
        if self.quiet_hours is not None and not all(0 <= h < 24 for h in self.quiet_hours):
            msg = f"quiet_hours must be two hours 0-23 (got {self.quiet_hours})"
            raise ValueError(msg)

    def consent(self, stated: bool | None) -> bool:
        return self.consent_default if stated is None else stated

    def held_out(self, customer_id: str) -> bool:
        return in_holdout(customer_id, self.holdout_share, self.holdout_salt)

    def check(
        self,
        kind: str,
        customer_id: str,
        *,
        consent: bool,
        history: Mapping[str, tuple[float, ...]],
        now: float,
        hold: str | None = None,
    ) -> Verdict:
        """May we send a message of ``kind`` to this customer at ``now``?

        ``history``: per kind, the times of earlier messages sent, holdout would-be sends
        included (so the caps treat both arms alike). ``hold``: why the customer's state
        holds marketing back (:func:`hold`), if it does; it refuses marketing kinds.
        """
        rule = self.kinds[kind]
        reason = self._refusal(rule, kind, consent, history, now)
        if hold is not None and rule.marketing and reason in {None, *_AFTER_HOLD}:
            reason = hold
        if reason is not None:
            return Verdict(False, reason)
        if self.held_out(customer_id):
            return Verdict(False, "holdout", holdout=True)
        return Verdict(True, "ok")

    def _refusal(
        self,
        rule: KindRule,
        kind: str,
        consent: bool,
        history: Mapping[str, tuple[float, ...]],
        now: float,
    ) -> str | None:
        if not consent:
            return "no_consent"
        if rule.quiet and self._quiet(now):
            return "quiet_hours"
        own = history.get(kind, ())
        caps = [
            (own, self.max_per_day if rule.per_day is None else rule.per_day, DAY, "cap_24h"),
            (own, self.max_per_week if rule.per_week is None else rule.per_week, 7 * DAY, "cap_7d"),
        ]
        if rule.shared:
            shared = tuple(t for k, times in history.items() if self.kinds[k].shared for t in times)
            caps += [
                (shared, self.max_per_day, DAY, "total_cap_24h"),
                (shared, self.max_per_week, 7 * DAY, "total_cap_7d"),
            ]
        for times, limit, window, reason in caps:
            if _within(times, now, window) >= limit:
                return reason
        return None

    def _quiet(self, now: float) -> bool:
        if self.quiet_hours is None:
            return False
        start, end = self.quiet_hours
        hour = ((now / HOUR) + self.utc_offset_h) % 24
        return start <= hour < end if start <= end else hour >= start or hour < end

    def prune(self, sent_at: tuple[float, ...], now: float) -> tuple[float, ...]:
        """Forget sends older than the longest cap window (keeps state bounded)."""
        return tuple(t for t in sent_at if now - t < 7 * DAY)


_AFTER_HOLD = ("cap_24h", "cap_7d", "total_cap_24h", "total_cap_7d")  # reasons a hold precedes


def hold(state: CustomerState, now: float, sla: SlaConfig | None = None) -> str | None:
    """Why marketing to this customer is held back at ``now``, or None: an open complaint
    (breached or not; :func:`streamcrm.policies.complaint_sla.suppresses_marketing`).

    >>> from streamcrm.state import CustomerState
    >>> hold(CustomerState("c1", 0.0, 0.0), 10.0) is None
    True
    """
    return "complaint_open" if suppresses_marketing(state.complaints, now, sla) else None


def _within(times: tuple[float, ...], now: float, window: float) -> int:
    return sum(1 for t in times if now - t < window)


def history(state: CustomerState, now: float) -> dict[str, tuple[float, ...]]:
    """A customer's sends per kind within the longest cap window, from their state."""
    p = state.profile
    return {
        "coupon": tuple(t for t in state.coupons_sent_at if now - t < 7 * DAY),
        "reminder": tuple(t for t in state.reminders_sent_at if now - t < 7 * DAY),
        "winback": () if p.winback_sent_at is None else (p.winback_sent_at,),
        "offer": tuple(t for t in state.offers_sent_at if now - t < 7 * DAY),
        "flash": tuple(t for t in state.flash.contacted_at if now - t < 7 * DAY)
        if state.flash is not None
        else (),
    }
