"""The schemas folder is the public contract: every schema compiles, every example validates,
and the functional core stays free of I/O libraries."""

from __future__ import annotations

import ast
from pathlib import Path

import orjson
import pytest

from streamcrm.contract import (
    BROADCAST_TYPES,
    INPUT_TYPES,
    OUTPUT_TYPES,
    schema_dir,
    validator,
)

ALL_TYPES = (
    [t for types in INPUT_TYPES.values() for t in types]
    + [*BROADCAST_TYPES, *OUTPUT_TYPES]
)
CORE = [
    "config", "contract", "events", "state", "snapshot", "synthetic", "timers", "reorder",
    "ingest/__init__", "ingest/batch", "ingest/dead_letter", "ingest/processor",
    "protocol", "outcomes", "crm_config", "decisions/__init__", "decisions/abandoned_cart",
    "decisions/churn_labels", "decisions/offers", "decisions/profile", "decisions/winback",
    "profiles_summary", "policies/abandoned_cart", "policies/contact", "policies/coupon",
    "policies/profile", "learning/rfm", "learning/churn", "replay/adapters", "replay/runner", "replay/report",
    "snapshot_sync", "policies/complaint_sla",
    "policies/coupon_abuse", "synthetic_farmers", "pricing/demand", "pricing/suggest",
    "pricing/table", "policies/flash_sale", "policies/flash_sale_index",
    "decisions/complaint_sla", "decisions/coupon_abuse",
]  # fmt: skip
SRC = Path(__file__).resolve().parents[2] / "src" / "streamcrm"


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_example_validates_and_required_fields_are_enforced(event_type: str) -> None:
    example = orjson.loads((schema_dir() / "examples" / f"{event_type}.json").read_bytes())
    check = validator(event_type)
    assert check.is_valid(example)
    assert example["type"] == event_type
    for field in ("event_id", "type"):
        broken = {k: v for k, v in example.items() if k != field}
        assert not check.is_valid(broken), f"{event_type} accepted an event without {field}"


def test_every_schema_file_is_a_known_type() -> None:
    names = {p.name.removesuffix(".schema.json") for p in schema_dir().glob("*.schema.json")}
    assert names == {*ALL_TYPES, "common"}


def test_schema_readme_documents_every_type() -> None:
    readme = (schema_dir() / "README.md").read_text()
    for event_type in ALL_TYPES:
        assert f"`{event_type}`" in readme, event_type


@pytest.mark.parametrize("module", CORE)
def test_core_imports_no_io_library(module: str) -> None:
    tree = ast.parse((SRC / f"{module}.py").read_text())
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    roots = {name.split(".")[0] for name in imported}
    assert not roots & {"faust", "aiokafka", "redis", "mode", "asyncio", "socket", "time"}, roots
