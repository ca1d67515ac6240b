"""IPS / SNIPS / DR against a hand-computed example, and their behaviour on simulated logs."""

from __future__ import annotations

import numpy as np
import pytest

from streamcrm.ope.estimators import contributions, dr, estimate_all, ips, snips

# Four logged rows, worked by hand:
#   r  p_log p_target q_logged q_target | w   w*r  DR term = q_target + w (r - q_logged)
#   1  0.5   0.25     0.4      0.3      | 0.5 0.5  0.3 + 0.5 * 0.6  =  0.60
#   0  0.25  0.5      0.2      0.35     | 2   0    0.35 + 2 * -0.2  = -0.05
#   1  0.25  0.75     0.5      0.6      | 3   3    0.6 + 3 * 0.5    =  2.10
#   0  0.5   0.5      0.1      0.2      | 1   0    0.2 + 1 * -0.1   =  0.10
# IPS = 3.5 / 4 = 0.875; SNIPS = 3.5 / 6.5; DR = 2.75 / 4 = 0.6875.
R = np.array([1.0, 0.0, 1.0, 0.0])
P_LOG = np.array([0.5, 0.25, 0.25, 0.5])
P_TARGET = np.array([0.25, 0.5, 0.75, 0.5])
Q_LOGGED = np.array([0.4, 0.2, 0.5, 0.1])
Q_TARGET = np.array([0.3, 0.35, 0.6, 0.2])


def test_estimators_match_the_hand_computed_example() -> None:
    table = contributions(R, P_LOG, P_TARGET, Q_LOGGED, Q_TARGET)
    assert ips(table) == pytest.approx(0.875)
    assert snips(table) == pytest.approx(3.5 / 6.5)
    assert dr(table) == pytest.approx(0.6875)


def test_dr_without_a_reward_model_is_ips() -> None:
    table = contributions(R, P_LOG, P_TARGET)
    assert dr(table) == pytest.approx(ips(table))


def test_zero_logging_propensity_is_refused() -> None:
    with pytest.raises(ValueError, match="above 0"):
        contributions(R, np.array([0.5, 0.0, 0.25, 0.5]), P_TARGET)


def _simulated_log(n: int, seed: int) -> tuple[np.ndarray, ...]:
    """A uniform logger over 4 arms with known click rates; target plays arm 3 w.p. 0.7."""
    rng = np.random.default_rng(seed)
    rates = np.array([0.05, 0.1, 0.2, 0.4])
    arm = rng.integers(0, 4, size=n)
    reward = (rng.random(n) < rates[arm]).astype(float)
    target = np.array([0.1, 0.1, 0.1, 0.7])
    return reward, np.full(n, 0.25), target[arm], rates, target, arm


def test_estimates_cover_the_true_value_of_a_simulated_target_policy() -> None:
    reward, p_log, p_target, rates, target, arm = _simulated_log(20_000, seed=11)
    truth = float(target @ rates)  # 0.315
    # A deliberately wrong constant reward model: DR must still be unbiased.
    q = np.full(4, 0.1)
    table = contributions(reward, p_log, p_target, q[arm], np.full(len(arm), target @ q))
    cis = estimate_all(table, resamples=500, seed=3)
    for name, ci in cis.items():
        assert ci.covers(truth), (name, ci, truth)
        assert ci.high - ci.low < 0.05, name


def test_a_good_reward_model_narrows_dr() -> None:
    reward, p_log, p_target, rates, target, arm = _simulated_log(5000, seed=12)
    exact = contributions(reward, p_log, p_target, rates[arm], np.full(len(arm), target @ rates))
    cis = estimate_all(exact, resamples=500, seed=1)
    assert cis["dr"].high - cis["dr"].low < cis["ips"].high - cis["ips"].low
