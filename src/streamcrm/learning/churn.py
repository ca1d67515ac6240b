"""Churn risk: will the customer order again within the horizon? An online River classifier.

An example opens at each order with the customer's features at that moment; it is
labelled 1 when they order again within ``horizon_s`` and 0 when the horizon passes
(a deadline). The model predicts before it learns each label, so ``auc`` is the
progressive (prequential) ROC AUC: every label was scored by a model that had not seen it.

>>> model = ChurnModel(horizon_s=30 * 86_400)
>>> x = {"recency_days": 2.0, "frequency": 3.0}
>>> 0.0 <= model.churn_score(x) <= 1.0
True
>>> model.learn_one(x, ordered_again=True)
>>> model.labels
1
"""

from __future__ import annotations

from river import compose, linear_model, metrics, preprocessing

from streamcrm.state import CustomerState

DAY = 86_400.0


def churn_features(state: CustomerState, now: float) -> dict[str, float]:
    profile = state.profile
    recency = (now - state.last_order_at) / DAY if state.last_order_at is not None else 0.0
    rhythm = profile.rhythm_days or 30.0
    week = 7 * DAY
    return {
        "recency_days": recency,
        "recency_over_rhythm": recency / max(rhythm, 1.0),
        "frequency": float(state.order_count),
        "monetary": state.total_spend,
        "rhythm_days": rhythm,
        "views_last_week": float(sum(1 for v in state.recent_views if now - v.ts < week)),
        "coupons_redeemed": float(state.coupons_redeemed),
        "cart_value": state.cart.value if state.cart else 0.0,
    }


class ChurnModel:
    def __init__(self, horizon_s: float = 30 * DAY) -> None:
        self.horizon_s = horizon_s
        self.model = compose.Pipeline(
            preprocessing.StandardScaler(), linear_model.LogisticRegression()
        )
        self.auc = metrics.ROCAUC()
        self.labels = 0
        self.positives = 0

    def churn_score(self, x: dict[str, float]) -> float:
        """Probability of *not* ordering within the horizon."""
        p_order = self.model.predict_proba_one(x).get(True, 0.5)
        return round(1.0 - float(p_order), 4)

    def learn_one(self, x: dict[str, float], *, ordered_again: bool) -> None:
        self.auc.update(ordered_again, 1.0 - self.churn_score(x))
        self.model.learn_one(x, ordered_again)
        self.labels += 1
        self.positives += int(ordered_again)

    def progressive_auc(self) -> float | None:
        # Undefined until both classes were seen.
        return round(float(self.auc.get()), 4) if 0 < self.positives < self.labels else None
