"""Online learners (River): population quantiles for RFM, the churn classifier."""
