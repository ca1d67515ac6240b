"""Off-policy evaluation: the value of a policy estimated from logs another policy made.

``estimators`` (IPS, SNIPS, doubly robust from column sums), ``reward_model`` (DR's River
model), ``evaluate`` (cross-fitting and bootstrap CIs per policy), ``obd`` (the Open Bandit
Dataset reader and its policies), ``command`` (``streamcrm evaluate-policy``).
"""
