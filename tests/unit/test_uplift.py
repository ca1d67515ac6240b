"""The online uplift learner recovers a planted heterogeneous effect on synthetic data."""

from __future__ import annotations

import random

import pytest

from streamcrm.learning.uplift import TwoModelUplift


def _customer(rng: random.Random) -> dict[str, float]:
    return {"seg": float(rng.random() < 0.4), "a": rng.random(), "noise": rng.gauss(0, 1)}


def _outcome(x: dict[str, float], treated: bool, rng: random.Random) -> bool:
    # Baseline 10-20% by ``a``; the treatment adds 25 points in segment 1 and nothing else.
    p = 0.1 + 0.1 * x["a"] + (0.25 if treated and x["seg"] == 1.0 else 0.0)
    return rng.random() < p


@pytest.mark.parametrize("seed", [1, 2])
def test_recovers_a_planted_segment_effect(seed: int) -> None:
    rng = random.Random(seed)
    learner = TwoModelUplift()
    for _ in range(30_000):
        x = _customer(rng)
        treated = rng.random() < 0.5
        learner.learn_one(x, treated=treated, y=_outcome(x, treated, rng))
    test = [_customer(rng) for _ in range(2000)]
    scored = sorted(test, key=learner.predict_one, reverse=True)
    effect = {s: [learner.predict_one(x) for x in test if x["seg"] == s] for s in (0.0, 1.0)}
    assert sum(effect[1.0]) / len(effect[1.0]) == pytest.approx(0.25, abs=0.07)
    assert sum(effect[0.0]) / len(effect[0.0]) == pytest.approx(0.0, abs=0.07)
    # Targeting the top 40% by predicted uplift reaches (nearly) only the segment that responds.
    top = scored[: int(0.4 * len(scored))]
    assert sum(x["seg"] for x in top) / len(top) > 0.9


def test_counts_outcomes_per_arm_and_reports_readiness() -> None:
    learner = TwoModelUplift()
    for i in range(5):
        learner.learn_one({"f": 1.0}, treated=i < 3, y=False)
    assert learner.seen == {"treated": 3, "control": 2}
    assert learner.ready(2)
    assert not learner.ready(3)


def test_rejects_a_non_positive_learning_rate() -> None:
    with pytest.raises(ValueError, match="learning_rate"):
        TwoModelUplift(learning_rate=0.0)
    with pytest.raises(ValueError, match="decay_after"):
        TwoModelUplift(decay_after=0.0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_separates_a_segment_after_a_few_hundred_examples(seed: int) -> None:
    # The coupon learner decides after ~100 resolved carts per arm: by 400 examples the
    # default (decaying) step must already see the segment; a constant 0.005 does not.
    rng = random.Random(seed)
    learner = TwoModelUplift()
    for _ in range(400):
        x = {"seg": float(rng.random() < 0.4), "a": rng.random()}
        treated = rng.random() < 0.5
        learner.learn_one(x, treated=treated, y=rng.random() < 0.2 + 0.3 * (treated and x["seg"]))
    assert learner.predict_one({"seg": 1.0, "a": 0.5}) > 0.15
    assert abs(learner.predict_one({"seg": 0.0, "a": 0.5})) < 0.08


def test_the_step_decays_with_the_arms_examples_and_is_checkpointed() -> None:
    learner = TwoModelUplift(learning_rate=0.05, decay_after=100.0)
    steps = learner.models[True].steps["LogisticRegression"].intercept_lr
    assert steps.get(0) == 0.05 and steps.get(300) == pytest.approx(0.025)
    for i in range(50):
        learner.learn_one({"f": float(i % 2)}, treated=i % 3 == 0, y=i % 2 == 0)
    again = TwoModelUplift(learning_rate=0.05, decay_after=100.0)
    again.restore(learner.as_dict())
    for model in (learner, again):  # the step count came back: the next step is the same
        model.learn_one({"f": 1.0}, treated=True, y=True)
    assert again.predict_one({"f": 1.0}) == learner.predict_one({"f": 1.0})
