"""The decision rules the modules of :mod:`streamcrm.decisions` apply. No I/O, no clock.

Most are pure (state and ``now`` in, a decision out). The exceptions teach a population
learner in place, as River's ``learn_one`` does, and say so in their docstrings:
``next_best_offer.evaluate`` (the offer gate), ``next_best_offer.learn_population`` (the
candidate statistics) and ``offer_learning.learn_choice`` (the ranker).

- :mod:`~streamcrm.policies.contact`: may we message this customer now (consent, quiet
  hours, per-kind and shared caps, holdout)? One policy for every message kind.
- :mod:`~streamcrm.policies.coupon`: which incentive an abandoned cart gets.
- :mod:`~streamcrm.policies.abandoned_cart`: when a cart counts as abandoned, which
  stage is due, and what an order means for an earlier abandonment.
- :mod:`~streamcrm.policies.profile`, :mod:`~streamcrm.policies.next_best_offer`:
  lifecycle, tiers and points; when and which offers, their rewards and evaluation.
"""
