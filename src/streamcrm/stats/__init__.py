"""Statistics for experiments: confidence intervals for rates, differences and bootstraps.

Pure and dependency-light: ``intervals`` is plain Python, ``bootstrap`` uses numpy (a
River dependency) because resampling 10,000 units 2,000 times is too slow in Python.
"""

from streamcrm.stats.bootstrap import bootstrap_ci, bootstrap_cis, cluster_sums
from streamcrm.stats.intervals import Interval, newcombe_diff, wilson

__all__ = ["Interval", "bootstrap_ci", "bootstrap_cis", "cluster_sums", "newcombe_diff", "wilson"]
