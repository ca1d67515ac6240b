"""The decision audit record (``decision_recorded``, schemas/decision_recorded.schema.json):
one decision the core made, whatever its verdict (sent, suppressed by consent or a cap,
held out), with its inputs and the version of the rules it was made under. Pure.

The core's record is carried whole under ``decision`` (so a new decision's fields reach
the audit topic without a change here); the envelope adds a deterministic id, the time
and the rules version.

>>> key, body = audit_record({"customer_id": "c1", "at": 0.0, "coupon_id": "cpn-1",
...                           "verdict": "cap_24h"}, "rules-abc")
>>> key, body["type"], body["ts"], body["kind"], body["decision"]
(b'c1', 'decision_recorded', '1970-01-01T00:00:00.000Z', 'abandoned_cart_stage', {'at': 0.0, 'coupon_id': 'cpn-1', 'verdict': 'cap_24h'})
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from streamcrm.events import format_ts

AUDIT_TYPE = "decision_recorded"
# An abandoned-cart stage's record carries no kind of its own (the first records had
# none); every other decision names its kind.
DEFAULT_KIND = "abandoned_cart_stage"
OFFER_KIND = "next_best_offer"
WINBACK_KIND = "win_back"


def kind_of(decision: dict[str, Any]) -> str:
    """Which decision a core record is of.

    >>> kind_of({"coupon_id": "k1"}), kind_of({"kind": "win_back"})
    ('abandoned_cart_stage', 'win_back')
    """
    return str(decision.get("kind", DEFAULT_KIND))


def is_stage(decision: dict[str, Any]) -> bool:
    """An abandoned-cart stage's record (what the lateness figures and the dashboard read)."""
    return kind_of(decision) == DEFAULT_KIND


def audit_record(decision: dict[str, Any], rules_version: str) -> tuple[bytes, dict[str, Any]]:
    """(key, body) of one decision's audit record; the same decision, the same id (a
    redelivered batch re-sends the same record, so readers can drop it by id)."""
    customer_id = str(decision["customer_id"])
    inner = {k: v for k, v in decision.items() if k not in {"customer_id", "kind"}}
    digest = hashlib.sha256(orjson.dumps(decision, option=orjson.OPT_SORT_KEYS)).hexdigest()
    body = {
        "event_id": f"dec-{digest[:24]}",
        "type": AUDIT_TYPE,
        "customer_id": customer_id,
        "ts": format_ts(float(decision["at"])),
        "kind": kind_of(decision),
        "rules_version": rules_version,
        "decision": inner,
    }
    return customer_id.encode(), body
