"""Contact policy: consent, holdout group and frequency caps. Pure; shared by every offer type.

>>> policy = ContactPolicy(holdout_share=0.0)
>>> policy.check("c1", consent=True, sent_at=(), now=100_000.0).allowed
True
>>> policy.check("c1", consent=True, sent_at=(99_000.0,), now=100_000.0).reason
'cap_24h'
>>> policy.check("c1", consent=False, sent_at=(), now=100_000.0).reason
'no_consent'
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

DAY = 86_400.0
# Every reason a verdict can give (outcome names are built from them).
REASONS = ("no_consent", "cap_24h", "cap_7d", "holdout")


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
class ContactPolicy:
    max_per_day: int = 1
    max_per_week: int = 3
    holdout_share: float = 0.10
    holdout_salt: str = "streamcrm-holdout-v1"

    def check(
        self, customer_id: str, *, consent: bool, sent_at: tuple[float, ...], now: float
    ) -> Verdict:
        """May we send a marketing message to this customer at ``now``?

        ``sent_at`` holds the times of earlier messages sent, holdout would-be sends
        included (so the caps treat both arms alike).
        """
        if not consent:
            return Verdict(False, "no_consent")
        if sum(1 for t in sent_at if now - t < DAY) >= self.max_per_day:
            return Verdict(False, "cap_24h")
        if sum(1 for t in sent_at if now - t < 7 * DAY) >= self.max_per_week:
            return Verdict(False, "cap_7d")
        if in_holdout(customer_id, self.holdout_share, self.holdout_salt):
            return Verdict(False, "holdout", holdout=True)
        return Verdict(True, "ok")

    def prune(self, sent_at: tuple[float, ...], now: float) -> tuple[float, ...]:
        """Forget sends older than the longest cap window (keeps state bounded)."""
        return tuple(t for t in sent_at if now - t < 7 * DAY)
