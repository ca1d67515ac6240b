"""Customer profiles: lifecycle stage, VIP tier and points. Pure; time comes in as ``now``.

Lifecycle: prospect (never bought) -> new (first order) -> active (repeat) -> loyal
(``loyal_orders`` or more) -> at_risk (silent for ``at_risk_factor`` x the customer's own
purchase rhythm) -> churned (``churn_factor`` x rhythm); any order brings them back.
The rhythm is an exponentially weighted mean of the gaps between their orders; one-order
customers get ``default_rhythm_days``.

Tiers come from spend in the last ``tier_window_days`` (rolling, in monthly buckets);
points are earned per unit spent times the tier multiplier at the time of the order and
reversed exactly when that order is cancelled (idempotent by event and order id, since
the state layer applies each once).

>>> from streamcrm.state import CustomerState
>>> config = ProfileConfig()
>>> stage(CustomerState("c1", 0.0, 0.0), now=0.0, config=config)
'prospect'
>>> one_order = CustomerState("c1", 0.0, 0.0, order_count=1, last_order_at=0.0)
>>> stage(one_order, now=DAY, config=config), stage(one_order, now=61 * DAY, config=config)
('new', 'at_risk')
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streamcrm.events import Event
from streamcrm.evolve import evolve
from streamcrm.state import CustomerState, Profile

DAY = 86_400.0
MONTH = 30 * DAY
MAX_POINTS = 1_000_000_000  # the profile schema's maximum


@dataclass(frozen=True, slots=True)
class ProfileConfig:
    loyal_orders: int = 5
    at_risk_factor: float = 2.0
    churn_factor: float = 4.0
    default_rhythm_days: float = 30.0
    min_rhythm_days: float = 3.0
    rhythm_weight: float = 0.3  # weight of the newest gap in the rhythm's moving mean
    tier_window_days: float = 365.0
    # (tier, minimum rolling spend), ascending.
    tiers: tuple[tuple[str, float], ...] = (
        ("silver", 100.0),
        ("gold", 500.0),
        ("platinum", 2000.0),
    )
    points_per_unit: float = 1.0
    multipliers: dict[str, float] = field(
        default_factory=lambda: {"none": 1.0, "silver": 1.25, "gold": 1.5, "platinum": 2.0}
    )


def rhythm_s(state: CustomerState, config: ProfileConfig) -> float:
    days = state.profile.rhythm_days or config.default_rhythm_days
    return max(days, config.min_rhythm_days) * DAY


def stage(state: CustomerState, now: float, config: ProfileConfig) -> str:
    """The lifecycle stage at ``now``."""
    if state.order_count <= 0 or state.last_order_at is None:
        return "prospect"
    # A millisecond of slack: a deadline computed as last_order + k * rhythm must land on
    # the new stage despite float rounding.
    silent = now - state.last_order_at + 1e-3
    if silent >= config.churn_factor * rhythm_s(state, config):
        return "churned"
    if silent >= config.at_risk_factor * rhythm_s(state, config):
        return "at_risk"
    if state.order_count == 1:
        return "new"
    return "loyal" if state.order_count >= config.loyal_orders else "active"


def stage_due(state: CustomerState, config: ProfileConfig) -> float | None:
    """When the stage next changes with no event (becoming at risk, then churned)."""
    if state.order_count <= 0 or state.last_order_at is None:
        return None
    current = state.profile.lifecycle_stage
    if current == "churned":
        return None
    factor = config.churn_factor if current == "at_risk" else config.at_risk_factor
    return state.last_order_at + factor * rhythm_s(state, config)


def tier(rolling_spend: float, config: ProfileConfig) -> str:
    """
    >>> tier(99.0, ProfileConfig()), tier(500.0, ProfileConfig())
    ('none', 'gold')
    """
    reached = [name for name, floor in config.tiers if rolling_spend >= floor]
    return reached[-1] if reached else "none"


def rolling_spend(profile: Profile, now: float, config: ProfileConfig) -> float:
    first_month = int((now - config.tier_window_days * DAY) // MONTH)
    return round(sum(amount for month, amount in profile.monthly_spend if month > first_month), 2)


def _add_spend(profile: Profile, ts: float, amount: float) -> tuple[tuple[int, float], ...]:
    month = int(ts // MONTH)
    buckets = dict(profile.monthly_spend)
    buckets[month] = round(buckets.get(month, 0.0) + amount, 2)
    return tuple(sorted(buckets.items()))[-13:]  # a year and a month is all a window needs


def on_order(
    state: CustomerState, before: CustomerState | None, event: Event, config: ProfileConfig
) -> CustomerState:
    """Points, rolling spend and rhythm after an applied ``order_placed`` or ``order_cancelled``."""
    profile = state.profile
    order_id = event.body["order_id"]
    if event.type == "order_placed":
        placed = next((o for o in state.recent_orders if o.order_id == order_id), None)
        if placed is None or (
            before is not None and any(o.order_id == order_id for o in before.recent_orders)
        ):
            return state  # the same order again: nothing earned twice
        points = int(
            placed.total * config.points_per_unit * config.multipliers.get(profile.tier, 1.0)
        )
        previous = before.last_order_at if before is not None else None
        rhythm = profile.rhythm_days
        if previous is not None and event.ts > previous:
            gap = (event.ts - previous) / DAY
            rhythm = (
                gap
                if rhythm is None
                else (1 - config.rhythm_weight) * rhythm + config.rhythm_weight * gap
            )
        profile = evolve(
            profile,
            points=min(profile.points + points, MAX_POINTS),
            order_points=(*profile.order_points, (order_id, points))[-20:],
            monthly_spend=_add_spend(profile, event.ts, placed.total),
            rhythm_days=rhythm,
        )
    else:
        earned = dict(profile.order_points)
        was_open = before is not None and any(
            o.order_id == order_id and not o.cancelled for o in before.recent_orders
        )
        if not was_open or order_id not in earned:
            return state
        cancelled = next(o for o in state.recent_orders if o.order_id == order_id)
        profile = evolve(
            profile,
            points=max(profile.points - earned[order_id], 0),
            order_points=tuple((o, p) for o, p in profile.order_points if o != order_id),
            monthly_spend=_add_spend(profile, cancelled.ts, -cancelled.total),
        )
    return evolve(state, profile=profile)


def refresh(
    state: CustomerState, now: float, config: ProfileConfig
) -> tuple[CustomerState, list[tuple[str, str | None, str | None]]]:
    """Recompute stage and tier at ``now``; return the changes as (field, old, new).

    ``now`` is never earlier than the last evaluation (``Profile.evaluated_at``): time
    only moves forward for a customer, whatever order the topics deliver events in.
    """
    profile = state.profile
    if profile.evaluated_at is not None and now < profile.evaluated_at:
        now = profile.evaluated_at
    elif profile.evaluated_at != now:
        profile = evolve(profile, evaluated_at=now)
        state = evolve(state, profile=profile)
    new_stage = stage(state, now, config)
    new_tier = tier(rolling_spend(profile, now, config), config)
    changes: list[tuple[str, str | None, str | None]] = []
    if new_stage != profile.lifecycle_stage:
        changes.append(("lifecycle_stage", profile.lifecycle_stage, new_stage))
    if new_tier != profile.tier:
        changes.append(("tier", profile.tier, new_tier))
    if changes:
        state = evolve(state, profile=evolve(profile, lifecycle_stage=new_stage, tier=new_tier))
    return state, changes
