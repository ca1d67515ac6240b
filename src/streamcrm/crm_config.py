"""What the decisions are configured with (:class:`CrmConfig`) and the population learners
they share (:class:`Learners`). Pure data: no decision logic lives here."""

from __future__ import annotations

from dataclasses import dataclass, field

from streamcrm.learning.anomaly import AnomalyDetector
from streamcrm.learning.candidates import MAX_SKUS, CandidateStats
from streamcrm.learning.churn import ChurnModel
from streamcrm.learning.offer_gate import OfferGate
from streamcrm.learning.ranking import OfferRanker
from streamcrm.learning.rfm import RFMScorer
from streamcrm.learning.uplift import TwoModelUplift
from streamcrm.policies.abandoned_cart import AbandonConfig
from streamcrm.policies.complaint_sla import SlaConfig
from streamcrm.policies.contact import ContactConfig
from streamcrm.policies.coupon_abuse import AbuseConfig
from streamcrm.policies.flash_sale import FlashConfig
from streamcrm.policies.next_best_offer import OfferConfig
from streamcrm.policies.profile import DAY, ProfileConfig
from streamcrm.pricing.suggest import PricingConfig


@dataclass(frozen=True, slots=True)
class CrmConfig:
    # Consent, caps across and per message kind, quiet hours, the holdout: every kind.
    contact: ContactConfig = field(default_factory=ContactConfig)
    abandon: AbandonConfig = field(default_factory=AbandonConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    churn_horizon_s: float = 30 * DAY
    winback_items: int = 3
    offers: OfferConfig = field(default_factory=OfferConfig)
    tracked_skus: int = MAX_SKUS  # the candidate statistics' cap (memory ~ this)
    sla: SlaConfig = field(default_factory=SlaConfig)  # complaint SLAs
    abuse: AbuseConfig = field(default_factory=AbuseConfig)  # coupon-abuse flags
    flash: FlashConfig = field(default_factory=FlashConfig)  # flash-sale notices
    pricing: PricingConfig = field(default_factory=PricingConfig)  # price suggestions (per SKU)
    # Build each offer decision's audit record (a dict and its item list, per decision)?
    # Only something reads them: the worker turns this on with --audit or a decision log
    # at INFO or finer (app/agents.py). Not a business rule: not in rules.toml.
    audit_offers: bool = False
    # Build each offer's exposure object (the pool with its features and scores, for
    # off-policy evaluation; offers.exposure on)? Only where something reads it: the
    # worker (its offers topic) and replay --decisions-out turn it on. Not a business rule.
    offer_exposure: bool = False


@dataclass(slots=True)
class Learners:
    """The population models (no per-customer state). Decisions teach them in place, as
    River estimators learn, each through its view (:mod:`streamcrm.decisions.learner_view`);
    the shell checkpoints them (:mod:`streamcrm.app.learner_store`)."""

    rfm: RFMScorer = field(default_factory=RFMScorer)
    churn: ChurnModel = field(default_factory=ChurnModel)
    candidates: CandidateStats = field(default_factory=CandidateStats)
    ranker: OfferRanker = field(default_factory=OfferRanker)
    gate: OfferGate = field(default_factory=OfferGate)
    # Coupon uplift (policies/coupon_uplift.py): taught only with coupon.targeting = "uplift".
    uplift: TwoModelUplift = field(default_factory=TwoModelUplift)
    # Coupon abuse; not checkpointed (learner_store.py): a restart warms it up again.
    anomaly: AnomalyDetector = field(default_factory=AnomalyDetector)
