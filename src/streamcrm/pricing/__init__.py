"""Dynamic price suggestions (the pure core; the worker's shell is app/pricing.py).

- :mod:`~streamcrm.pricing.demand`: per-SKU counts in a sliding event-time window and
  a decayed baseline of the SKU's own past (fixed size per SKU).
- :mod:`~streamcrm.pricing.suggest`: the Poisson rate test, the bounded change and the
  per-SKU rate limit; ``observe(state, event, cfg) -> (state, emitted)``.
- :mod:`~streamcrm.pricing.table`: at most K SKUs, least recently active evicted.
- :mod:`~streamcrm.pricing.deltas`: a worker's per-SKU demand, re-keyed by SKU.
- :mod:`~streamcrm.pricing.owner`: the SKU owner's merge of those deltas, each
  (sender, seq) once.
"""
