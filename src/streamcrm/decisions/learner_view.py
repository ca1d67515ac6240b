"""What each decision may reach of the population learners: one view per decision.

A decision states its view in its signature, ``ctx: Context[ProfileLearners]``, and mypy
holds it to that: it cannot call a learner method its view does not list, and the
registry line checks that :class:`~streamcrm.crm_config.Learners` satisfies the view.
A bare ``Context`` reaches no learner at all (win-back). Views are
read-only properties (the learners are the shell's to swap, not the decision's).

Which calls teach (the one side effect a decision may have; River learns in place), by view:

- :class:`ChurnLabelLearners`: ``churn.learn_one`` teaches a resolved label; nothing is read.
- :class:`ProfileLearners`: ``rfm.learn_one`` teaches the streaming quantiles;
  ``rfm.score_one`` and ``churn.churn_score`` only read (the churn model cannot be taught).
- :class:`CartLearners`: ``uplift`` read at an incentive stage (``predict_arms``, ``ready``)
  and taught each resolved abandonment (``learn_one``), only with ``coupon.targeting = "uplift"``.
- :class:`AbuseLearners`: ``anomaly`` scored, then taught each scoring moment.
- :class:`OfferLearners`: the candidate statistics (``observe``), the ranker
  (``learn_example``) and the gate (``update``) are taught, and read, by the offer policies.

The offers' three learners are handed whole to the offer policies
(:mod:`streamcrm.policies.next_best_offer`, :mod:`streamcrm.policies.offer_learning`),
which are typed over the concrete classes; the view keeps the offers away from the RFM
and churn models.
"""

from __future__ import annotations

from typing import Protocol

from streamcrm.learning.candidates import CandidateStats
from streamcrm.learning.offer_gate import OfferGate
from streamcrm.learning.ranking import OfferRanker
from streamcrm.policies.coupon_abuse import Scorer


class ChurnTeacher(Protocol):
    def learn_one(self, x: dict[str, float], *, ordered_again: bool, group: str = "") -> None:
        """Teach one resolved label (a side effect)."""


class ChurnScorer(Protocol):
    def churn_score(self, x: dict[str, float]) -> float:
        """The probability of not ordering within the horizon (a read)."""


class RfmQuantiles(Protocol):
    def learn_one(self, *, recency_days: float, frequency: float, monetary: float) -> None:
        """Add one customer's values to the population quantiles (a side effect)."""

    def score_one(
        self, *, recency_days: float, frequency: float, monetary: float
    ) -> tuple[int, int, int] | None:
        """Quintile scores against the population (a read)."""


class ChurnLabelLearners(Protocol):
    """:mod:`streamcrm.decisions.churn_labels`: teaches the churn model, reads nothing."""

    @property
    def churn(self) -> ChurnTeacher: ...


class ProfileLearners(Protocol):
    """:mod:`streamcrm.decisions.profile`: teaches the RFM quantiles and scores against
    them; reads the churn score (it cannot teach the churn model)."""

    @property
    def rfm(self) -> RfmQuantiles: ...

    @property
    def churn(self) -> ChurnScorer: ...


class OfferLearners(Protocol):
    """:mod:`streamcrm.decisions.offers`: the candidate statistics, the ranker and the gate
    (each taught and read by the offer policies)."""

    @property
    def candidates(self) -> CandidateStats: ...

    @property
    def ranker(self) -> OfferRanker: ...

    @property
    def gate(self) -> OfferGate: ...


class AnomalyTeacher(Scorer, Protocol):
    """The coupon-abuse detector: scored (``ready``, ``score_one``, ``drivers``: reads),
    then taught each scoring moment (``learn_one``: a side effect)."""

    def learn_one(self, x: dict[str, float]) -> None: ...


class AbuseLearners(Protocol):
    """:mod:`streamcrm.decisions.coupon_abuse`: scores with and teaches the detector only."""

    @property
    def anomaly(self) -> AnomalyTeacher: ...


class UpliftTeacher(Protocol):
    """The coupon uplift learner: read (``predict_arms``, ``ready``), taught (``learn_one``)."""

    def predict_arms(self, x: dict[str, float]) -> tuple[float, float]: ...

    def ready(self, min_per_arm: int) -> bool: ...

    def learn_one(self, x: dict[str, float], *, treated: bool, y: bool | float) -> None: ...


class CartLearners(Protocol):
    """:mod:`streamcrm.decisions.abandoned_cart`: the coupon uplift learner only."""

    @property
    def uplift(self) -> UpliftTeacher: ...
