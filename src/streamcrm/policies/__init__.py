"""Decisions, one per module, all pure: they take state and ``now`` and return a decision.

- :mod:`~streamcrm.policies.contact`: may we message this customer at all (consent,
  holdout, frequency caps)? Shared by every marketing output.
- :mod:`~streamcrm.policies.coupon`: which incentive an abandoned cart gets.
- :mod:`~streamcrm.policies.abandoned_cart`: when a cart counts as abandoned, which
  stage is due, and what an order means for an earlier abandonment.
"""
