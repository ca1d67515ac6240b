"""Churn risk: will the customer order again within the horizon? An online River classifier.

An example opens at each order with the customer's features as of that moment, taken
*before* the order is applied (so ``recency_days`` is the gap since the previous order,
``recency_over_rhythm`` that gap over their mean gap so far, ``frequency`` the orders
before this one); it is labelled 1 when they order again within ``horizon_s`` and 0
when the horizon passes (a deadline). A score used at that moment is computed on the
same features. The model predicts before it learns each label, so ``auc`` is the
progressive (prequential) ROC AUC: every label was scored by a model that had not seen
it. With ``history`` set to a list, each label is also kept as (customer, score,
label, order count, -recency over rhythm) so a replay can report the exact AUC and the
two simple baselines on the same label moments.

>>> model = ChurnModel(horizon_s=30 * 86_400)
>>> x = {"recency_days": 2.0, "frequency": 3.0}
>>> 0.0 <= model.churn_score(x) <= 1.0
True
>>> model.learn_one(x, ordered_again=True)
>>> model.labels
1
"""

from __future__ import annotations

import math
from typing import Any

from river import compose, linear_model, metrics, preprocessing

from streamcrm.policies.complaint_sla import churn_features as complaint_features
from streamcrm.sharing.linear import LinearShare
from streamcrm.state import CustomerState

DAY = 86_400.0


def churn_features(state: CustomerState, now: float) -> dict[str, float]:
    profile = state.profile
    recency = (now - state.last_order_at) / DAY if state.last_order_at is not None else 0.0
    rhythm = profile.rhythm_days or 30.0
    week = 7 * DAY
    day = DAY
    # Chosen on the Taobao slice, 2-day horizon (exact AUC, README): tenure_days bought
    # +0.019; log_frequency, orders_last_week, views_last_day within +-0.003 each; a
    # first_order flag (the same as frequency 0) -0.0025, dropped.
    return {
        "log_frequency": math.log1p(max(state.order_count, 0)),
        "orders_last_week": float(
            sum(1 for o in state.recent_orders if not o.cancelled and now - o.ts < week)
        ),
        "views_last_day": float(sum(1 for v in state.recent_views if now - v.ts < day)),
        "tenure_days": max(now - state.first_seen, 0.0) / DAY,
        "recency_days": recency,
        "recency_over_rhythm": recency / max(rhythm, 1.0),
        "frequency": float(state.order_count),
        "monetary": state.total_spend,
        "rhythm_days": rhythm,
        "views_last_week": float(sum(1 for v in state.recent_views if now - v.ts < week)),
        "coupons_redeemed": float(state.coupons_redeemed),
        "cart_value": state.cart.value if state.cart else 0.0,
        # Open and SLA-breached complaints (decisions/complaint_sla.py). Zero for anyone
        # without a complaint: the scaler maps a constant to 0 and the weights stay 0, so
        # scores without complaints are those of the model without these features.
        **{k: float(v) for k, v in complaint_features(state.complaints).items()},
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
        self.history: list[tuple[str, float, bool, float, float]] | None = None
        self._share: LinearShare | None = None  # set by the first export (sharing on)
        self._labels_exported = 0

    def export_delta(self) -> dict[str, Any] | None:
        """This worker's own steps since the last export (:mod:`streamcrm.sharing.linear`).
        ``labels``, ``positives`` and the progressive AUC stay this worker's own (each
        scored its own labels), so a replay adds them up across workers. None if it
        learned nothing since."""
        if self.labels == self._labels_exported:
            return None
        self._labels_exported = self.labels
        if self._share is None:
            self._share = LinearShare()
        return self._share.export(self.model["LogisticRegression"], self.model["StandardScaler"])

    def merge_delta(self, delta: Any) -> None:
        """Add another worker's :meth:`export_delta` (checked; :class:`BadState` if not)."""
        if delta is None:
            return
        if self._share is None:
            self._share = LinearShare()
        self._share.merge(self.model["LogisticRegression"], self.model["StandardScaler"], delta)

    def churn_score(self, x: dict[str, float]) -> float:
        """Probability of *not* ordering within the horizon."""
        p_order = self.model.predict_proba_one(x).get(True, 0.5)
        return round(1.0 - float(p_order), 4)

    def learn_one(self, x: dict[str, float], *, ordered_again: bool, group: str = "") -> None:
        p_order = 1.0 - self.churn_score(x)
        self.auc.update(ordered_again, p_order)
        if self.history is not None:
            baselines = (x.get("frequency", 0.0), -x.get("recency_over_rhythm", 0.0))
            self.history.append((group, p_order, ordered_again, *baselines))
        self.model.learn_one(x, ordered_again)
        self.labels += 1
        self.positives += int(ordered_again)

    def progressive_auc(self) -> float | None:
        # Undefined until both classes were seen.
        return round(float(self.auc.get()), 4) if 0 < self.positives < self.labels else None
