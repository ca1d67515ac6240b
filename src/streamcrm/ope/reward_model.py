"""The reward model of the doubly robust estimator: a River logistic regression of a click
on the position and the item's features, fitted on logged rows, then tabulated for every
(position, item) the target policies can choose.

Clicks are rare (0.38% in the OBD random log), so the intercept starts at the log-odds of
the training rows' click rate instead of 0: from 0 (p = 0.5) one pass of SGD would not
get anywhere near the base rate, and DR would add a badly biased term to correct.

>>> model = RewardModel(passes=2, seed=1)
>>> one, two = features(1, 7, {}, (1, 2)), features(2, 7, {}, (1, 2))
>>> model.fit([(one, 1), (one, 0), (two, 0)] * 50)
>>> 0.0 < model.predict(two) < model.predict(one) < 1.0
True
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from river import compose, linear_model, optim, preprocessing

Row = tuple[dict[str, float], int]


class RewardModel:
    def __init__(self, passes: int = 3, learning_rate: float = 0.01, seed: int = 0) -> None:
        self.passes = passes
        self.learning_rate = learning_rate
        self.seed = seed
        self.model: compose.Pipeline | None = None

    def fit(self, rows: Sequence[Row]) -> None:
        positives = sum(y for _, y in rows)
        rate = min(max(positives / max(len(rows), 1), 1e-4), 1 - 1e-4)
        self.model = compose.Pipeline(
            preprocessing.StandardScaler(),
            linear_model.LogisticRegression(
                optimizer=optim.SGD(self.learning_rate),
                intercept_init=math.log(rate / (1 - rate)),
                intercept_lr=self.learning_rate,
                l2=1e-4,
            ),
        )
        rng = random.Random(self.seed)
        order = list(rows)
        for _ in range(self.passes):
            rng.shuffle(order)
            for x, y in order:
                self.model.learn_one(x, bool(y))

    def predict(self, x: dict[str, float]) -> float:
        if self.model is None:
            msg = "fit the reward model before predicting"
            raise RuntimeError(msg)
        return float(self.model.predict_proba_one(x).get(True, 0.0))


def features(
    position: int, item: int, item_features: dict[int, dict[str, float]], positions: tuple[int, ...]
) -> dict[str, float]:
    """Position as a dense one-hot, then the item's features."""
    one_hot = {f"position={p}": float(p == position) for p in positions}
    return {**one_hot, **item_features.get(item, {})}
