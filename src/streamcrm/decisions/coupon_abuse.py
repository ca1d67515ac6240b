"""Coupon-abuse flags as a decision: score each customer's behaviour at its scoring
moments with the population detector (``ctx.learners.anomaly``), flag the anomalous
(``anomaly_flagged``, to the service desk's topic), and withhold incentives while the
flag lasts (:func:`streamcrm.policies.coupon_abuse.blocks_incentives`, read by the
abandoned-cart stages) until it expires or a ``customer_flag_cleared`` arrives.

The rules are :mod:`streamcrm.policies.coupon_abuse`; the sub-state is
``CustomerState.abuse``. Side effect: :func:`on_event` teaches ``ctx.learners.anomaly``
the features of every scoring moment, after scoring them (score, then learn).
"""

from __future__ import annotations

from streamcrm.crm_config import CrmConfig
from streamcrm.decisions.learner_view import AbuseLearners
from streamcrm.events import Event
from streamcrm.evolve import evolve
from streamcrm.policies import coupon_abuse as policy
from streamcrm.protocol import Context, Emitted, Step
from streamcrm.state import CustomerState

NAME = "coupon_abuse"
OUTCOMES = frozenset(policy.OUTCOMES)
EMITS = frozenset({"anomaly_flagged"})
FOLLOWS: frozenset[str] = frozenset()


def on_event(state: CustomerState, event: Event, ctx: Context[AbuseLearners]) -> Step:
    """Update the features; at a scoring moment score them, maybe flag, then learn them."""
    if event.type not in policy.INPUT_TYPES:
        return Step(state)
    cfg, detector = ctx.config.abuse, ctx.learners.anomaly
    abuse, bodies, outcomes = policy.on_event(state.abuse, event, cfg, scorer=detector)
    if "abuse_scoring_moment" in outcomes:
        detector.learn_one(policy.features(abuse, event.ts, cfg))
    return Step(
        evolve(state, abuse=abuse),
        emitted=tuple(Emitted("anomaly_flagged", body, event.ts) for body in bodies),
        outcomes=outcomes,
    )


def due(state: CustomerState, config: CrmConfig) -> float | None:
    return policy.due(state.abuse, config.abuse)


def on_due(state: CustomerState, now: float, ctx: Context) -> Step:
    abuse, _, outcomes = policy.on_due(state.abuse, now, ctx.config.abuse)
    return Step(evolve(state, abuse=abuse), outcomes=outcomes)
