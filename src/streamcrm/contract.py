"""The event contract: loads ``schemas/*.schema.json`` and compiles one validator per type.

The schemas folder is the public contract; code never restates its rules, it loads them.
Installed wheels carry the folder as ``streamcrm/_schemas``; a source checkout reads
``schemas/`` at the repository root.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson

SCHEMA_BASE = "https://streamcrm.dev/schemas/v1/"

INPUT_TYPES: dict[str, tuple[str, ...]] = {
    # offer_interaction: the storefront's front end reports what it did with an offer (shown,
    # clicked, dismissed) alongside the views it already sends, in the same order.
    "browse": ("product_viewed", "search_performed", "offer_interaction"),
    "cart": ("cart_item_added", "cart_item_removed", "cart_cleared", "checkout_started"),
    "order": ("order_placed", "order_cancelled", "consent_updated", "customer_erasure_requested"),
    # The service desk: complaints (SLAs, marketing held back) and reviewers clearing
    # coupon-abuse flags. Keyed by customer like the others, co-partitioned with them.
    "service": (
        "complaint_opened",
        "complaint_replied",
        "complaint_resolved",
        "customer_flag_cleared",
    ),
}
OUTPUT_TYPES: tuple[str, ...] = (
    "dead_letter",
    "coupon_issued",
    "next_best_offer",
    "offer_reward",
    "customer_profile_updated",
    "customer_erased",
    "decision_recorded",  # the optional audit topic (--audit)
    "sla_breached",
    "anomaly_flagged",
    # Issue 19 cores, built but not yet wired into the worker (broadcast / re-keyed):
    "price_suggestion",
    "flash_sale_notification",
)
TOPIC_KIND_OF_TYPE: dict[str, str] = {t: kind for kind, types in INPUT_TYPES.items() for t in types}
# Broadcast inputs keyed by their own id, not a customer (no envelope customer_id):
# decoded by their own module (streamcrm.policies.flash_sale).
BROADCAST_TYPES: tuple[str, ...] = ("flash_sale_announced",)


def schema_dir() -> Path:
    """Where the schema files are: the installed copy first, else the source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_schemas", here.parents[1] / "schemas"):
        if (candidate / "common.schema.json").is_file():
            return candidate
    msg = f"schema files not found next to {here} (expected _schemas/ or ../../schemas/)"
    raise FileNotFoundError(msg)


def load_schema(name: str) -> dict[str, Any]:
    """Load one schema document by event type (or ``common``)."""
    data = orjson.loads((schema_dir() / f"{name}.schema.json").read_bytes())
    if not isinstance(data, dict):
        msg = f"{name}.schema.json is not a JSON object"
        raise ValueError(msg)
    return data


@cache
def _registry() -> jsonschema_rs.Registry:
    common = load_schema("common")
    return jsonschema_rs.Registry([(SCHEMA_BASE + "common.schema.json", common)])


@cache
def validator(event_type: str) -> jsonschema_rs.Validator:
    """The compiled validator for one event type (cached: compile once per process)."""
    return jsonschema_rs.validator_for(load_schema(event_type), registry=_registry())


def describe_error(error: jsonschema_rs.ValidationError) -> str:
    """One line naming the field and the rule it broke, e.g. ``qty: -1 is less than 1``."""
    path = ".".join(str(p) for p in error.instance_path) or "(event)"
    return f"{path}: {error.message}"
