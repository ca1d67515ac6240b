"""The lift readout (:func:`streamcrm.experiments.lift.lift_from_rows`) as an HTML table, for
the replay report. Pure.

>>> "<h2>Lift" in lift_html({"customer": {"treatment": {}, "holdout": {}, "reason": "r"}})
True
>>> lift_html({})
''
"""

from __future__ import annotations

import html
from typing import Any

ROWS = (
    ("customers", "customers"), ("abandoned carts", "carts_abandoned"),
    ("recovered carts", "recovered"), ("recovery rate (customers, 95% CI)", "recovery_rate"),
    ("revenue per abandoned cart", "revenue_per_abandoned_cart"),
    ("coupons sent", "coupons_sent"), ("coupon cost", "coupon_cost"),
)  # fmt: skip
DIFFS = (
    ("recovery rate", "recovery_rate"),
    ("revenue per abandoned cart", "revenue_per_abandoned_cart"),
    ("incremental revenue", "incremental_revenue"),
    ("incremental revenue minus coupon cost", "incremental_revenue_minus_coupon_cost"),
)


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        value = f"{value['estimate']} [{value['ci_low']}, {value['ci_high']}]"
    return f"<td class=num>{html.escape('-' if value is None else str(value))}</td>"


def lift_html(lift: dict[str, Any]) -> str:
    readout = lift.get("customer")
    if not readout:
        return ""
    arms = ("treatment", "holdout")
    head = "<tr><th></th>" + "".join(f"<th>{a}</th>" for a in arms) + "</tr>"
    body = "".join(
        f"<tr><td>{html.escape(name)}</td>{''.join(_cell(readout[a].get(key)) for a in arms)}</tr>"
        for name, key in ROWS
    )
    diff = readout.get("difference")
    if diff is None:
        tail = f"<p>{html.escape(str(readout.get('reason')))}</p>"
    else:
        tail = "<table>" + "".join(
            f"<tr><td>treatment - holdout: {html.escape(name)}</td>{_cell(diff[key])}</tr>"
            for name, key in DIFFS
        ) + f"</table><p>{html.escape(readout.get('method', ''))}</p>"
    return (
        "<h2>Lift (intent to treat, resolved abandoned carts, by customer)</h2>"
        f"<table>{head}{body}</table>{tail}"
    )
