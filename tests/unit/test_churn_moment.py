"""Churn examples see the customer as of the order's moment, before the order is applied."""

from __future__ import annotations

from streamcrm.decisions import CrmConfig
from streamcrm.policies.profile import DAY
from streamcrm.replay.runner import churn_summary
from tests.unit.test_profiles import NO_HOLDOUT, T0, Customer


def test_an_example_opened_at_an_order_sees_the_gap_before_it() -> None:
    c = Customer(CrmConfig(abandon=NO_HOLDOUT.abandon, churn_horizon_s=10 * DAY))
    c.order(T0, 30.0, "o1")
    first = dict(c.profile.churn_pending[1])
    assert first["frequency"] == 0.0 and first["recency_days"] == 0.0
    c.order(T0 + 4 * DAY, 30.0, "o2")
    x = dict(c.profile.churn_pending[1])
    # Before o2: one order, four days ago (after it, both would say 2 orders, 0 days).
    assert x["frequency"] == 1.0 and x["recency_days"] == 4.0 and x["tenure_days"] == 4.0
    # The score the profile shows was computed on those same features.
    assert c.profile.churn_score == c.processor.learners.churn.churn_score(x)


def test_the_replay_reports_the_exact_auc_beside_its_baselines() -> None:
    history = [("a", 0.9, True, 3.0, -0.1), ("b", 0.2, False, 1.0, -2.0),
               ("c", 0.6, True, 1.0, -0.5), ("d", 0.4, False, 2.0, -0.2)]  # fmt: skip
    out = churn_summary(history)
    assert out["churn_auc"] == 1.0
    assert out["churn_baseline_auc_order_count"] == 0.625  # ties count half
    assert out["churn_baseline_auc_recency_over_gap"] == 0.75  # c (-0.5) below d (-0.2)
    assert out["churn_auc_vs_order_count"] == 0.375
    assert out["churn_auc_ci"] is not None
