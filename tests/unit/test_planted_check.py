"""Issue 16's planted-effect check: orders placed anyway redeem the live coupon, the uplift
features carry the rule's value bands, the check's summary counts coverage and pairs the
policies per seed, and ``streamcrm planted-check`` prints JSON or one error line."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import orjson
import pytest

from streamcrm.decisions import CrmConfig, Learners
from streamcrm.experiments.planted import _ClosedLoop
from streamcrm.experiments.planted_check import Shop, planted_check, summarise
from streamcrm.learning import checkpoint
from streamcrm.learning.uplift import TwoModelUplift
from streamcrm.policies.coupon_uplift import uplift_features
from streamcrm.state import Cart, CartLine, CustomerState


def _coupon(cart: str, value: float, ts: str = "2026-11-01T10:00:00Z") -> dict[str, Any]:
    return {
        "coupon_id": f"cpn-{cart}", "customer_id": "c1", "ts": ts, "code": f"CODE-{cart}",
        "discount": {"kind": "percent", "percent": 10.0}, "expires_at": "2026-11-03T10:00:00Z",
        "cart": {"cart_id": cart, "value": value, "lines": []},
        "reason": {"inputs": {"targeting": "uplift"}},
    }  # fmt: skip


def _order(cart: str, ts: str, **extra: Any) -> bytes:
    body = {"type": "order_placed", "customer_id": "c1", "cart_id": cart, "order_id": f"o-{ts}",
            "ts": ts, **extra}  # fmt: skip
    return orjson.dumps(body)


def _loop(redeem: float, lift: float = 0.0) -> _ClosedLoop:
    return _ClosedLoop([], CrmConfig(), seed=1, lift=lift, segment="high_value",
                       min_value=100.0, redeem=redeem)  # fmt: skip


def test_an_order_placed_anyway_redeems_the_live_coupon_of_its_cart_once() -> None:
    loop = _loop(redeem=1.0)
    loop._answer(_coupon("k1", 120.0))
    later = _order("k1", "2026-11-02T10:00:00Z")
    assert orjson.loads(loop._redeem("order", later))["coupon_code"] == "CODE-k1"
    assert loop._redeem("order", later) == later  # used: a second order keeps no code
    loop._answer(_coupon("k2", 50.0))
    assert loop._redeem("order", _order("k3", "2026-11-02T10:00:00Z")) == _order(
        "k3", "2026-11-02T10:00:00Z"
    )  # another cart
    expired = _order("k2", "2026-11-04T10:00:00Z")
    assert loop._redeem("order", expired) == expired
    own = _order("k2", "2026-11-02T10:00:00Z", coupon_code="OTHER")
    assert loop._redeem("order", own) == own  # an order with its own code keeps it
    assert loop.redeemed == 1
    assert (loop.coupons["all"], loop.coupons["in_segment"], loop.coupons["learner"]) == (2, 1, 2)


def test_no_order_redeems_with_a_zero_share_and_a_planted_order_uses_the_code() -> None:
    loop = _loop(redeem=0.0)
    loop._answer(_coupon("k1", 120.0))
    order = _order("k1", "2026-11-02T10:00:00Z")
    assert loop._redeem("order", order) == order and loop.redeemed == 0
    planted = _loop(redeem=1.0, lift=1.0)
    planted._answer(_coupon("k1", 120.0))  # answered by a planted order with the code
    assert planted.planted == 1 and not planted.codes


@pytest.mark.parametrize(
    ("value", "band"), [(0.0, 0), (39.99, 0), (40.0, 1), (74.0, 1), (75.0, 2), (150.0, 3)]
)
def test_uplift_features_one_hot_the_rule_value_bands(value: float, band: int) -> None:
    cart = Cart("k", (CartLine("a", 1, value),), 1, 0.0) if value else None
    x = uplift_features(CustomerState("c1", 0.0, 0.0, cart=cart), 0.0)
    bands = {k: v for k, v in x.items() if k.startswith("value_band_")}
    assert len(bands) == 4 and bands[f"value_band_{band}"] == 1.0 and sum(bands.values()) == 1.0


def test_the_checkpoint_keeps_the_uplift_learners_step_schedule() -> None:
    like = Learners(uplift=TwoModelUplift(learning_rate=0.02, decay_after=50.0))
    restored, _ = checkpoint.load(checkpoint.dump_model(like), [], like=like)
    assert (restored.uplift.learning_rate, restored.uplift.decay_after) == (0.02, 50.0)


def _seed(truth: float, estimate: float, low: float, high: float, nets: tuple[float, float]):
    rate = {"truth": truth, "readout": {"estimate": estimate, "ci_low": low, "ci_high": high},
            "covers": low <= truth <= high}  # fmt: skip

    def policy(net: float, share: float) -> dict[str, Any]:
        return {"coupons_in_segment_share": share, "coupons_in_segment_share_learner": share,
                "incremental_revenue_minus_coupon_cost": {"estimate": net}, "coupon_cost": 1.0,
                "incremental_margin_minus_coupon_cost": net / 10}  # fmt: skip

    return {"recovery_rate_difference": {"cart": rate, "customer": rate},
            "rule": policy(nets[0], 0.3), "uplift": policy(nets[1], 0.6)}  # fmt: skip


def test_the_summary_counts_coverage_mean_error_and_pairs_the_policies() -> None:
    seeds = [
        _seed(0.05, 0.07, 0.01, 0.13, (100.0, 150.0)),
        _seed(0.05, 0.15, 0.08, 0.22, (200.0, 180.0)),  # misses the truth
        _seed(0.10, 0.09, 0.02, 0.16, (50.0, 110.0)),
    ]
    out = summarise(seeds)
    assert (out["cart"]["covered"], out["cart"]["of"]) == (2, 3)
    assert out["cart"]["mean_error"] == pytest.approx((0.02 + 0.10 - 0.01) / 3, abs=1e-6)
    assert out["net_revenue_uplift_minus_rule"] == {"mean": 30.0, "seeds_better": 2, "of": 3}
    assert out["net_margin_uplift_minus_rule"]["mean"] == pytest.approx(3.0)
    assert out["uplift"]["mean_coupons_in_segment_share"] == 0.6


def test_a_small_check_end_to_end() -> None:
    shop = Shop(events=3000, customers=300, lift=0.6, min_per_arm=5, resamples=50)
    out = planted_check([3], shop)
    seed = out["per_seed"][0]
    cart = seed["recovery_rate_difference"]["cart"]
    assert seed["planted_orders"] > 0 and cart["truth"] > 0
    assert cart["covers"] == (
        cart["readout"]["ci_low"] <= cart["truth"] <= cart["readout"]["ci_high"]
    )
    assert seed["rule"]["incentive_decisions_by_targeting"] == {}
    assert "rule_fallback" in seed["uplift"]["incentive_decisions_by_targeting"]
    assert out["summary"]["cart"]["of"] == 1


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamcrm.cli", "planted-check", *args],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip


def test_the_command_prints_json_and_refuses_bad_arguments_in_one_line() -> None:
    run = _cli("--seeds", "2,4", "--events", "1500", "--customers", "200", "--resamples", "20",
               "--jobs", "2")  # fmt: skip
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["seeds"] == [2, 4] and out["shop"]["events"] == 1500
    assert [s["seed"] for s in out["per_seed"]] == [2, 4] and run.stderr.count("\n") == 3
    for bad, word in ((["--seeds", "1,x"], "--seeds"), (["--lift", "1.5"], "--lift"),
                      (["--jobs", "0"], "--jobs"), (["--seeds", "1,1"], "distinct")):  # fmt: skip
        run = _cli(*bad)
        assert run.returncode == 2 and word in run.stderr and "Traceback" not in run.stderr
        assert run.stdout == ""
