"""The contact policy: one for every message kind."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamcrm.policies.contact import DAY, HOUR, REASONS, ContactConfig, KindRule

NOW = 1_796_000_000.0
OPEN = ContactConfig(holdout_share=0.0)


def reason(policy: ContactConfig, kind: str, **history: tuple[float, ...]) -> str:
    return policy.check(kind, "c1", consent=True, history=history, now=NOW).reason


def test_each_kind_has_its_own_caps() -> None:
    assert reason(OPEN, "coupon", coupon=(NOW - HOUR,)) == "cap_24h"
    assert reason(OPEN, "coupon", coupon=(NOW - 2 * DAY, NOW - 3 * DAY, NOW - 4 * DAY)) == "cap_7d"
    assert reason(OPEN, "reminder", reminder=(NOW - HOUR,)) == "cap_24h"
    assert reason(OPEN, "winback", winback=(NOW - 3 * DAY,)) == "cap_7d"  # once a week
    assert reason(OPEN, "offer", offer=(NOW - HOUR,) * 19) == "ok"
    assert reason(OPEN, "offer", offer=(NOW - HOUR,) * 20) == "cap_24h"


def test_shared_caps_span_the_pushed_marketing_kinds_only() -> None:
    assert reason(OPEN, "winback", coupon=(NOW - HOUR,)) == "total_cap_24h"
    assert reason(OPEN, "coupon", winback=(NOW - HOUR,)) == "total_cap_24h"
    week = (NOW - 2 * DAY, NOW - 4 * DAY)
    assert reason(OPEN, "coupon", coupon=week, winback=(NOW - 5 * DAY,)) == "total_cap_7d"
    # A reminder and on-site offers neither use up nor are stopped by the shared caps.
    assert reason(OPEN, "coupon", reminder=(NOW - HOUR,), offer=(NOW - HOUR,) * 5) == "ok"
    assert reason(OPEN, "reminder", coupon=(NOW - HOUR,)) == "ok"
    assert reason(OPEN, "offer", coupon=(NOW - HOUR,), winback=(NOW - HOUR,)) == "ok"


def test_consent_comes_first_and_the_holdout_last() -> None:
    held = ContactConfig(holdout_share=1.0)
    no = held.check("offer", "c1", consent=False, history={}, now=NOW)
    assert (no.allowed, no.reason, no.holdout) == (False, "no_consent", False)
    capped = held.check("coupon", "c1", consent=True, history={"coupon": (NOW - 1,)}, now=NOW)
    assert capped.reason == "cap_24h" and not capped.holdout
    verdict = held.check("coupon", "c1", consent=True, history={}, now=NOW)
    assert (verdict.allowed, verdict.reason, verdict.holdout) == (False, "holdout", True)
    assert ContactConfig(consent_default=False).consent(None) is False
    assert ContactConfig(consent_default=False).consent(True) is True


def test_quiet_hours_hold_back_pushed_kinds_not_offers() -> None:
    hour = (NOW / HOUR) % 24
    quiet = ContactConfig(holdout_share=0.0, quiet_hours=(int(hour), (int(hour) + 1) % 24))
    assert reason(quiet, "coupon") == "quiet_hours"
    assert reason(quiet, "reminder") == "quiet_hours"
    assert reason(quiet, "offer") == "ok"
    shifted = ContactConfig(
        holdout_share=0.0, quiet_hours=(int(hour), (int(hour) + 1) % 24), utc_offset_h=3.0
    )
    assert reason(shifted, "coupon") == "ok"  # 3 h later at the shop: not quiet there


@given(start=st.integers(0, 23), end=st.integers(0, 23), at=st.floats(0, 10 * DAY))
def test_quiet_hours_cover_exactly_their_span(start: int, end: int, at: float) -> None:
    policy = ContactConfig(holdout_share=0.0, quiet_hours=(start, end))
    hour = (at / HOUR) % 24
    inside = start <= hour < end if start <= end else hour >= start or hour < end
    verdict = policy.check("coupon", "c1", consent=True, history={}, now=at)
    assert (verdict.reason == "quiet_hours") == inside


def test_per_kind_limits_are_configurable_and_reasons_declared() -> None:
    kinds = {**OPEN.kinds, "offer": KindRule(per_day=1, per_week=2, shared=False, quiet=False)}
    strict = ContactConfig(holdout_share=0.0, kinds=kinds)
    assert reason(strict, "offer", offer=(NOW - HOUR,)) == "cap_24h"
    assert {"ok"} | set(REASONS) >= {reason(strict, k) for k in kinds}


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"holdout_share": 1.5}, "holdout_share"), ({"quiet_hours": (21, 24)}, "quiet_hours")],
)
def test_a_bad_setting_is_refused_with_its_name(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ContactConfig(**changes)  # type: ignore[arg-type]
