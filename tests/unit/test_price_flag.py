"""--no-price-suggestions: on by default, parsed, passed to child workers (bench, verify)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from streamcrm.cli import build_parser, settings_from
from streamcrm.config import Settings
from streamcrm.worker_process import worker_command, write_rules


def test_price_suggestions_are_on_unless_turned_off() -> None:
    parse = build_parser().parse_args
    assert settings_from(parse(["worker"])).price_suggestions is True
    assert settings_from(parse(["worker", "--no-price-suggestions"])).price_suggestions is False


def test_the_environment_turns_them_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMCRM_PRICE_SUGGESTIONS", "0")
    assert settings_from(build_parser().parse_args(["worker"])).price_suggestions is False


@pytest.mark.parametrize("on", [False, True])
def test_a_child_worker_prices_as_its_parent(tmp_path: Path, on: bool) -> None:
    parent = replace(Settings(), price_suggestions=on)
    argv = worker_command(parent, tmp_path / "data", write_rules(parent, tmp_path / "r.toml"))
    assert settings_from(build_parser().parse_args(argv[3:])).price_suggestions is on
