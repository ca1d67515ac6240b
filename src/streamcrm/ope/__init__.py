"""Off-policy evaluation: the value of a policy estimated from logs another policy made.

``estimators`` (IPS, SNIPS, doubly robust, with bootstrap CIs), ``obd`` (the Open Bandit
Dataset reader and its policies), ``command`` (``streamcrm evaluate-policy``).
"""
