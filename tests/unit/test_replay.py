"""Replay adapters, runner and report on small logs the tests write themselves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from streamcrm.contract import validator
from streamcrm.decisions import CrmConfig
from streamcrm.policies.contact import ContactConfig
from streamcrm.replay.adapters import derived_price, map_rows
from streamcrm.replay.report import render
from streamcrm.replay.runner import replay

REES46 = """event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session
2019-11-01 00:00:00 UTC,view,100,9,electronics.phone,acme,200.00,u1,s1
2019-11-01 00:01:00 UTC,cart,100,9,electronics.phone,acme,200.00,u1,s1
2019-11-01 00:02:00 UTC,remove_from_cart,100,9,electronics.phone,acme,200.00,u1,s1
2019-11-01 00:03:00 UTC,cart,101,9,,acme,50.00,u1,s1
2019-11-01 00:04:00 UTC,teleport,101,9,,acme,50.00,u1,s1
2019-11-02 09:00:00 UTC,purchase,101,9,,acme,50.00,u1,s2
2019-11-01 00:05:00 UTC,view,102,9,kitchen,acme,not-a-price,u2,s3
"""

# Deliberately not in time order: the adapter sorts.
TAOBAO = """2,500,7,pv,1511900000
1,500,7,pv,1511848894
1,500,7,cart,1511848900
1,501,7,fav,1511848950
1,500,7,buy,1511940000
"""

RETAILROCKET = """timestamp,visitorid,event,itemid,transactionid
1433221332117,7,view,355908,
1433221400000,7,addtocart,355908,
1433223000000,7,transaction,355908,4000
"""


def lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def decoded(fmt: str, text: str) -> tuple[list[dict[str, object]], dict[str, int]]:
    mapped, unmapped = map_rows(fmt, lines(text))
    events = [orjson.loads(m.value) for m in mapped]
    for event in events:
        validator(str(event["type"])).validate(event)  # every mapped row is a contract event
    assert [m.ts for m in mapped] == sorted(m.ts for m in mapped)
    return events, dict(unmapped)


def test_rees46_rows_map_to_contract_events_and_bad_rows_are_counted() -> None:
    events, unmapped = decoded("rees46", REES46)
    assert [e["type"] for e in events] == [
        "product_viewed", "cart_item_added", "cart_item_removed", "cart_item_added", "order_placed",
    ]  # fmt: skip
    assert unmapped == {"event_type 'teleport' unknown": 1, "malformed row (ValueError)": 1}
    order = events[-1]
    assert order["total"] == 50.0 and order["cart_id"] == "u1-cart0"
    assert events[3]["category"] == "9"  # empty category_code falls back to category_id


def test_taobao_sorts_by_time_derives_prices_and_counts_fav() -> None:
    events, unmapped = decoded("taobao", TAOBAO)
    assert [(e["customer_id"], e["type"]) for e in events] == [
        ("1", "product_viewed"), ("1", "cart_item_added"), ("2", "product_viewed"), ("1", "order_placed"),
    ]  # fmt: skip
    assert unmapped == {"fav: no wishlist event in contract v1": 1}
    assert events[0]["price"] == derived_price("500") == events[1]["unit_price"]
    assert 7.38 <= derived_price("500") <= 148.42


def test_retailrocket_maps_transactions_to_orders() -> None:
    events, unmapped = decoded("retailrocket", RETAILROCKET)
    assert [e["type"] for e in events] == ["product_viewed", "cart_item_added", "order_placed"]
    assert events[-1]["order_id"].startswith("4000") and not unmapped


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        map_rows("csv", [])


def test_replay_fires_deadlines_on_event_time() -> None:
    # A cart left for a day, then bought two days later: abandoned, reminded, couponed, recovered.
    log = """1,500,7,cart,1511848900
1,500,7,buy,1512021700
"""
    mapped, _ = map_rows("taobao", lines(log))
    outcome = replay(
        mapped, crm=CrmConfig(contact=ContactConfig(holdout_share=0.0))
    )
    summary = outcome.summary()
    assert (
        summary["carts"],
        summary["carts_abandoned"],
        summary["reminded"],
        summary["couponed"],
    ) == (1, 1, 1, 1)
    # What stays pending: the buyer's lifecycle deadline (at risk) and the churn example.
    assert summary["recovered_treated"] == 1 and summary["timers_pending"] == 1
    assert [c["stage"] for c in outcome.coupons] == ["reminder", "coupon"]


def test_report_has_the_plots_and_the_figures() -> None:
    mapped, _ = map_rows("taobao", lines(TAOBAO))
    outcome = replay(mapped, crm=CrmConfig())
    page = render("test", outcome.summary(), outcome.timeline)
    assert page.count("<svg") == 2 and "Abandonment funnel" in page
    assert "Events per hour" in page and "<rect" in page


def test_replay_cli_prints_a_summary_and_json_last(tmp_path: Path) -> None:
    log = tmp_path / "taobao.csv"
    log.write_text(TAOBAO)
    result = subprocess.run(
        [sys.executable, "-m", "streamcrm", "replay", "--format", "taobao", str(log), "--json",
         "--report", str(tmp_path / "report")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("events", "customers", "carts", "carts_abandoned", "coupons_issued", "holdout", "recovered",
                "offers_emitted", "offer_hit_rate_at_5", "popularity_hit_rate_at_5", "unmapped_rows",
                "events_per_s"):  # fmt: skip
        assert key in summary, key
    assert (summary["events"], summary["unmapped_rows"], summary["customers"]) == (4, 1, 2)
    assert "carts 1" in result.stderr
    assert (tmp_path / "report" / "index.html").read_text().startswith("<!doctype html>")


def test_replay_cli_missing_file_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "streamcrm", "replay", "--format", "rees46", str(tmp_path / "nope.csv")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "no such file" in result.stderr
