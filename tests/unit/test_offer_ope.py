"""Off-policy evaluation of offer rankings from the exposure log: the estimators against a
hand-computed example, the join of offers and rewards, and a replay's own log end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from streamcrm.ope.exposure import LoggedOffer, read_decisions
from streamcrm.ope.reward_model import RewardModel
from streamcrm.ope.slates import (
    _predict,
    evaluate_slates,
    logged,
    on_policy,
    slate_table,
    uniform,
)
from streamcrm.replay.adapters import map_rows
from streamcrm.replay.runner import replay
from streamcrm.synthetic import generate
from tests.unit.test_next_best_offer import CONFIG as CONFIG_NO_HOLDOUT


def _offer(customer: str, shown: list[str], p: list[float], targets: set[str]) -> LoggedOffer:
    pool = ["a", "b", "c"]
    return LoggedOffer(
        offer_id=f"o-{customer}", customer_id=customer, at=0.0, pool=pool,
        scores=[3.0, 2.0, 1.0], model=[3.0, 2.0, 1.0], features={"f": [0.0, 0.0, 0.0]},
        shown=shown, propensities=p, shares=(0.0, 0.5), targets=frozenset(targets),
        rewarded=bool(targets),
    )  # fmt: skip


# Two slots, pool a, b, c; slot 1 never explores, slot 2 with 0.5: it shows b with
# 0.5 + 0.5 * 1/2 = 0.75 and c with 0.25. Offer 1 showed (a, c) and c was carted next;
# offer 2 showed (a, b) and nothing shown was. Target: uniform over the pool (1/3 each).
OFFERS = [
    _offer("u1", ["a", "c"], [1.0, 0.25], {"c"}),
    _offer("u2", ["a", "b"], [1.0, 0.75], set()),
]
Q = [np.full((2, 3), 0.1)] * 2  # a reward model predicting 0.1 everywhere


def test_the_logging_marginals_are_the_hand_computed_ones() -> None:
    assert logged(OFFERS[0]).tolist() == [[1.0, 0.0, 0.0], [0.0, 0.75, 0.25]]


def test_slot_weights_against_a_hand_computed_example() -> None:
    logging = [logged(o) for o in OFFERS]
    table, truth, max_w = slate_table(OFFERS, uniform, Q, logging, by="slot")
    # offer 1: w = (1/3, 4/3), r = (0, 1); offer 2: w = (1/3, 4/9), r = (0, 0)
    assert table[:, 0] == pytest.approx([4 / 3, 0.0])
    ips = table[:, 0].sum() / 2
    snips = table[:, 0].sum() / table[:, 1].sum()  # mean slot weights 5/6 and 7/18
    dr = table[:, 2].sum() / 2  # 0.2 + w (r - 0.1): 41/30 and 11/90
    assert (ips, snips, dr) == pytest.approx((2 / 3, 12 / 11, 67 / 90))
    assert truth == pytest.approx([2 / 3, 0.0]) and max_w == pytest.approx(4 / 3)


def test_item_weights_against_a_hand_computed_example() -> None:
    logging = [logged(o) for o in OFFERS]
    table, _, max_w = slate_table(OFFERS, uniform, Q, logging, by="item")
    # In the list at all: logging a 1, b 0.75, c 0.25; uniform 2/3 each.
    # offer 1: w = (2/3, 8/3), r = (0, 1); offer 2: w = (2/3, 8/9), r = (0, 0)
    ips = table[:, 0].sum() / 2
    snips = table[:, 0].sum() / table[:, 1].sum()  # mean weights 5/3 and 7/9
    dr = table[:, 2].sum() / 2  # 0.2 + w (r - 0.1): 38/15 and 2/45
    assert (ips, snips, dr) == pytest.approx((4 / 3, 12 / 11, 58 / 45))
    assert max_w == pytest.approx(8 / 3)


def test_the_vectorised_reward_model_predicts_as_river_does() -> None:
    rng = np.random.default_rng(3)
    columns = ["slot=1", "slot=2", "f", "g"]
    x = rng.random((40, 4))
    rows = [(dict(zip(columns, r.tolist(), strict=True)), int(r[2] > 0.7)) for r in x]
    fitted = RewardModel(seed=1)
    fitted.fit(rows)
    assert _predict(fitted, columns, x) == pytest.approx(
        [fitted.predict(dict(zip(columns, r.tolist(), strict=True))) for r in x]
    )


def _line(event: dict[str, object]) -> str:
    return json.dumps(event)


def _offer_event(offer_id: str, customer: str, ts: str, expires: str) -> dict[str, object]:
    return {
        "type": "next_best_offer", "offer_id": offer_id, "customer_id": customer, "ts": ts,
        "expires_at": expires, "items": [{"sku": "a", "rank": 1, "propensity": 1.0}],
        "exposure": {"policy": "slot-epsilon-v1", "exploration": [0.0], "features": ["f"],
                     "pool": [{"sku": "a", "score": 1.0, "model": 1.0, "x": [0.5]}]},
    }  # fmt: skip


def test_the_join_closes_windows_by_reward_replacement_or_expiry() -> None:
    day = "2026-11-0{}T00:00:00Z"
    lines = [
        _line(_offer_event("o1", "c1", day.format(1), day.format(2))),  # replaced by o2
        _line(_offer_event("o2", "c1", day.format(2), day.format(3))),  # rewarded
        _line(
            {
                "type": "offer_reward",
                "offer_id": "o2",
                "customer_id": "c1",
                "ts": day.format(2),
                "skus": ["a"],
                "hits": [1],
            }
        ),
        _line(_offer_event("o3", "c2", day.format(1), day.format(2))),  # expired
        _line(_offer_event("o4", "c3", day.format(3), day.format(4))),  # still open
        _line({"type": "coupon_issued", "ts": day.format(3)}),
    ]
    log = read_decisions(lines, "d.jsonl")
    assert [(o.offer_id, o.rewarded) for o in log.offers] == [
        ("o1", False),
        ("o3", False),
        ("o2", True),
    ]
    assert log.open_offers == 1 and log.rewards == 1
    with pytest.raises(ValueError, match="line 2"):
        read_decisions([lines[0], "{not json"], "d.jsonl")


def test_a_replays_own_log_evaluates_its_logging_policy_on_policy() -> None:
    lines = [r.value.decode() for r in generate(4000, seed=5, customers=60)]
    mapped, _ = map_rows("jsonl", lines)
    written: list[dict[str, object]] = []
    # as `replay --decisions-out` runs: the offers carry their exposure
    replay(mapped, crm=replace(CONFIG_NO_HOLDOUT, offer_exposure=True), decisions=written.extend)
    log = read_decisions([json.dumps(e) for e in written], "replay")
    assert log.offers and any(o.rewarded for o in log.offers)
    for o in log.offers:  # the published propensities are the policy's own marginals
        table = logged(o)
        assert [
            round(table[j, o.pool.index(s)], 6) for j, s in enumerate(o.shown)
        ] == o.propensities
    figures, _ = evaluate_slates(log.offers, resamples=200)
    observed = on_policy(log.offers)
    assert observed > 0
    for estimator in ("ips", "snips"):  # its own weights are 1 (up to the 6 published digits)
        assert figures["logged"][estimator].estimate == pytest.approx(observed, rel=1e-4)  # type: ignore[union-attr]


def test_the_command_says_what_is_wrong_without_a_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "none.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "streamcrm", "evaluate-policy", "--format", "decisions", str(missing)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "not found" in result.stderr and "Traceback" not in result.stderr
