"""Online uplift: how much a treatment (a message, a coupon) changes the chance of an outcome
for this customer. A two-model (T-learner) estimate from River classifiers, one per arm.

``predict_one(x)`` is ``P(y | x, treated) - P(y | x, control)``; both models learn only from
their own arm, so under randomisation each is an unbiased model of its arm's outcome.
The learning rate is the lever. On the Hillstrom e-mail experiment (tens of thousands of
customers) River's default SGD step (0.01) lets the last few thousand customers dominate
each arm's weights, and the difference of two noisy models is noisier still; a step of
0.005 averages over more customers (``streamcrm uplift`` passes it, constant; figures in
README). The coupon learner learns from resolved abandoned carts, a few hundred before it
decides, and at 0.005 its weights have hardly left zero by then (on the planted-effect shop
it gave the planted segment no more coupons than the rule). So by default the step starts
at 0.05 and decays, ``0.05 / sqrt(1 + n / 300)`` after ``n`` examples of the arm (0.025 at
900, 0.005 at 30,000): fast while there is little to go on, averaging once there is much.
The step count is the optimizer's, checkpointed with the weights. One-hot features must be dense (every level present as 0 or 1): River's
StandardScaler scales a key that only ever appears as 1 to 0.

>>> learner = TwoModelUplift()
>>> for i in range(4000):
...     seg = float(i % 2)
...     treated = (i // 2) % 2 == 0
...     # the treatment works only in segment 1 (deterministic toy outcomes)
...     learner.learn_one({"seg": seg}, treated=treated, y=treated and seg == 1.0)
>>> learner.predict_one({"seg": 1.0}) > 0.5 > learner.predict_one({"seg": 0.0})
True
>>> learner.seen
{'treated': 2000, 'control': 2000}
"""

from __future__ import annotations

import math
from typing import Any

from river import compose, linear_model, optim, preprocessing

from streamcrm.learning.river_state import BadState, glm, integer, scaler, set_glm, set_scaler


class DecayingStep(optim.base.Scheduler):
    """``learning_rate / sqrt(1 + t / decay_after)`` at step ``t``.

    >>> step = DecayingStep(0.05, 300.0)
    >>> step.get(0), round(step.get(900), 4), round(step.get(29_700), 4)
    (0.05, 0.025, 0.005)
    """

    def __init__(self, learning_rate: float, decay_after: float) -> None:
        self.learning_rate, self.decay_after = learning_rate, decay_after

    def get(self, t: int) -> float:
        return self.learning_rate / math.sqrt(1.0 + t / self.decay_after)


def _arm_model(learning_rate: float, l2: float, decay_after: float | None) -> compose.Pipeline:
    step: float | DecayingStep = (
        learning_rate if decay_after is None else DecayingStep(learning_rate, decay_after)
    )
    return compose.Pipeline(
        preprocessing.StandardScaler(),
        linear_model.LogisticRegression(optimizer=optim.SGD(step), intercept_lr=step, l2=l2),
    )


class TwoModelUplift:
    """River-style online uplift learner: ``learn_one(x, treated=, y=)``, ``predict_one(x)``.

    ``learning_rate=0.01, decay_after=None`` is the plain baseline (River's default SGD step,
    constant, for both the weights and the intercept). Deterministic: the same stream gives
    the same model.
    """

    def __init__(
        self, learning_rate: float = 0.05, l2: float = 0.0, decay_after: float | None = 300.0
    ) -> None:
        if not learning_rate > 0 or (decay_after is not None and not decay_after > 0):
            msg = f"learning_rate and decay_after must be above 0 (got {learning_rate}, {decay_after})"
            raise ValueError(msg)
        self.learning_rate, self.decay_after = learning_rate, decay_after
        self.models = {arm: _arm_model(learning_rate, l2, decay_after) for arm in (True, False)}
        self._seen = {True: 0, False: 0}

    def learn_one(self, x: dict[str, float], *, treated: bool, y: bool | float) -> None:
        self.models[treated].learn_one(x, bool(y))
        self._seen[treated] += 1

    def predict_arms(self, x: dict[str, float]) -> tuple[float, float]:
        """(P(y | x, control), P(y | x, treated))."""
        return self._p(False, x), self._p(True, x)

    def predict_one(self, x: dict[str, float]) -> float:
        control, treated = self.predict_arms(x)
        return treated - control

    def ready(self, min_per_arm: int) -> bool:
        """Has each arm seen ``min_per_arm`` outcomes (the fallback-to-rule threshold)?"""
        return min(self._seen.values()) >= min_per_arm

    @property
    def seen(self) -> dict[str, int]:
        return {"treated": self._seen[True], "control": self._seen[False]}

    def _p(self, arm: bool, x: dict[str, float]) -> float:
        return float(self.models[arm].predict_proba_one(x).get(True, 0.0))

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON (a checkpoint record's part): per arm the scaler, the weights, the count."""
        return {
            arm: {
                "seen": self._seen[treated],
                "scaler": scaler(self.models[treated].steps["StandardScaler"]),
                "glm": glm(self.models[treated].steps["LogisticRegression"]),
            }
            for arm, treated in (("treated", True), ("control", False))
        }

    def restore(self, data: Any) -> None:
        """Load :meth:`as_dict`'s form, checked field by field (``BadState`` if it is not)."""
        if not isinstance(data, dict):
            raise BadState("uplift: expected an object")
        for arm, treated in (("treated", True), ("control", False)):
            part = data.get(arm)
            if not isinstance(part, dict):
                raise BadState(f"uplift {arm}: expected an object")
            model = self.models[treated]
            set_scaler(model.steps["StandardScaler"], part.get("scaler"))
            set_glm(model.steps["LogisticRegression"], part.get("glm"))
            self._seen[treated] = integer(part.get("seen"), f"uplift {arm} seen")
