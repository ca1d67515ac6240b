"""Flash sales for the synthetic shop: a few campaigns on what its customers look at. Pure.

Beside :mod:`streamcrm.synthetic` (which it only reads): ``count`` announcements spread
over the first half of the traffic's event time, each putting on sale the five SKUs
viewed most in the traffic before it and the most viewed category, starting 6 h after
the announcement for 4 h, platinum 2 h and gold 1 h early. The traffic itself is not
changed.

>>> [a["campaign_id"] for _, a in announcements(3000, seed=7, customers=100, count=2)]
['fs-synthetic-1', 'fs-synthetic-2']
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from streamcrm.events import format_ts, parse_ts
from streamcrm.synthetic import N_SKUS, generate

H = 3600.0


def announcements(
    n_events: int,
    *,
    seed: int,
    customers: int,
    skus: int = N_SKUS,
    count: int = 3,
    **traffic: Any,
) -> list[tuple[bytes, dict[str, Any]]]:
    """(key, ``flash_sale_announced`` body) of each campaign, in announcement order, for
    the traffic ``generate`` gives with these arguments (``traffic``: its others)."""
    views: list[tuple[float, str, str]] = []
    first = last = None
    for record in generate(n_events, seed=seed, customers=customers, skus=skus, **traffic):
        try:
            body = orjson.loads(record.value)
            ts = parse_ts(body["ts"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            continue  # a planted bad record
        first = ts if first is None else min(first, ts)
        last = ts if last is None else max(last, ts)
        if body.get("type") == "product_viewed" and "sku" in body and "category" in body:
            views.append((ts, body["sku"], body["category"]))
    if first is None or last is None:
        return []
    out = []
    for i in range(1, count + 1):
        at = first + (last - first) * i / (2 * (count + 1))
        seen = [(sku, cat) for ts, sku, cat in views if ts < at]
        top = [sku for sku, _ in Counter(s for s, _ in seen).most_common(5)]
        cats = [cat for cat, _ in Counter(c for _, c in seen).most_common(1)]
        campaign = f"fs-synthetic-{i}"
        out.append((campaign.encode(), {
            "event_id": f"{campaign}-announced", "type": "flash_sale_announced",
            "ts": format_ts(at), "campaign_id": campaign, "skus": top or ["none"],
            "categories": cats, "starts_at": format_ts(at + 6 * H),
            "ends_at": format_ts(at + 10 * H), "discount_percent": 20 + 5 * i,
            "early_access": [{"tier": "platinum", "before_s": 2 * H}, {"tier": "gold", "before_s": H}],
        }))  # fmt: skip
    return out
