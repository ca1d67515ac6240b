"""Business rules as a file: the example is the defaults, every key is checked, flags
override the file, and a child worker gets exactly the parent's rules."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamcrm.cli import build_parser, settings_from
from streamcrm.config import Settings
from streamcrm.decisions import CrmConfig
from streamcrm.rules import (
    RULES,
    RulesError,
    load_rules,
    normalized,
    rules_from,
    rules_version,
    to_toml,
)
from streamcrm.worker_process import worker_command, write_rules

EXAMPLE = Path(__file__).resolve().parents[2] / "rules.toml"


def test_the_example_rules_file_is_exactly_the_defaults_and_names_every_key() -> None:
    assert load_rules(EXAMPLE) == CrmConfig()
    data = tomllib.loads(EXAMPLE.read_text())
    keys = {f"{section}.{name}" for section, body in data.items() for name in body}
    assert keys == set(RULES)


def test_every_rule_changes_the_config_it_maps_to() -> None:
    """No key maps onto nothing (or onto a field another key also sets)."""
    defaults = normalized(CrmConfig())
    seen = set()
    for key, (path, _) in RULES.items():
        assert path not in seen, key
        seen.add(path)
        section, name = key.split(".")
        assert name in defaults[section]


def _non_default() -> CrmConfig:
    return rules_from(
        {
            "abandoned_cart": {"abandon_after": "2h", "stages": [
                {"name": "nudge", "after": "3h", "incentive": True}]},
            "coupon": {"buy_anyway": 0.55, "tiers": [{"min_cart_value": 0, "percent": 7.5}]},
            "contact": {"max_per_day": 0, "holdout_salt": "new-group", "consent_default": False},
            "offers": {"throttle": "1m", "learn": False, "tracked_skus": 500},
            "profile": {"tiers": [{"name": "vip", "min_spend": 10}],
                        "multipliers": {"none": 1, "vip": 3}, "churn_factor": 9},
            "churn": {"horizon": "14d", "winback_items": 1},
        }
    )  # fmt: skip


def test_a_written_rules_file_loads_back_to_the_same_rules(tmp_path: Path) -> None:
    config = _non_default()
    assert config != CrmConfig()
    path = tmp_path / "r.toml"
    path.write_text(to_toml(config))
    assert load_rules(path) == config
    assert rules_version(load_rules(path)) == rules_version(config) != rules_version(CrmConfig())


@settings(max_examples=60, deadline=None)
@given(
    share=st.floats(0, 1),
    per_day=st.integers(0, 50),
    throttle=st.floats(0, 1e7, allow_subnormal=False),
    weight=st.floats(0, 1),
)
def test_rules_survive_the_file_round_trip(
    share: float, per_day: int, throttle: float, weight: float
) -> None:
    config = rules_from({
        "contact": {"holdout_share": share, "max_per_day": per_day, "max_per_week": per_day},
        "offers": {"throttle": throttle}, "profile": {"rhythm_weight": weight},
    })  # fmt: skip
    assert rules_from(tomllib.loads(to_toml(config))) == config


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"coupon": {"buy_anyway": 1.5}},
            "coupon.buy_anyway: 1.5 is not allowed (a share between 0 and 1)",
        ),
        ({"coupon": {"tiers": []}}, "coupon.tiers: [] is not allowed (a non-empty list"),
        ({"offers": {"throttle": "soon"}}, "offers.throttle: 'soon' is not allowed (a duration"),
        ({"churn": {"horizon": "infs"}}, "churn.horizon: 'infs' is not allowed (a duration"),
        (
            {"offers": {"items": True}},
            "offers.items: true is not allowed (an integer of at least 1)",
        ),
        (
            {"offers": {"throttel": 5}},
            "unknown key offers.throttel (allowed in [offers]: items, throttle,",
        ),
        ({"coupons": {}}, "unknown section [coupons] (allowed: abandoned_cart, coupon, contact,"),
        (
            {"abandoned_cart": {"abandon_after": "2h"}},
            "abandoned_cart.stages: stages must be in time order",
        ),
        (
            {"profile": {"tiers": [{"name": "vip", "min_spend": 1}]}},
            "profile.multipliers: no multiplier for tier 'vip'",
        ),
        (
            {"profile": {"churn_factor": 1.5}},
            "profile.churn_factor: must be above at_risk_factor (2)",
        ),
    ],
)
def test_a_bad_rule_names_the_key_and_what_it_allows(data: dict, message: str) -> None:
    with pytest.raises(RulesError) as raised:
        rules_from(data)
    assert str(raised.value).startswith(message), str(raised.value)


def test_a_bad_rules_file_stops_the_command_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('[contact]\nholdout_share = "half"\n')
    result = subprocess.run(
        [sys.executable, "-m", "streamcrm", "replay", "x.csv", "--format", "jsonl", "--rules", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"streamcrm replay: error: {path}: contact.holdout_share: 'half' is not allowed "
        "(a share between 0 and 1)"
    ]


def test_flags_override_the_rules_file_and_errors_name_the_flag(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("[contact]\nholdout_share = 0.5\nmax_per_day = 2\n")
    parse = build_parser().parse_args
    settings = settings_from(parse(["demo", "--rules", str(path), "--holdout", "0.2"]))
    assert settings.crm.contact.holdout_share == 0.2
    assert settings.crm.contact.max_per_day == 2  # from the file
    bench = settings_from(parse(["bench", "--rules", str(path)]))
    assert bench.crm.contact.max_per_day == 2
    from streamcrm.cli_flags import UsageError

    with pytest.raises(UsageError, match=r"^--holdout: 1.5 is not allowed \(a share"):
        settings_from(parse(["worker", "--holdout", "1.5"]))
    late = r"^abandoned_cart.stages: .* none before abandon_after \(abandon_after 7200s; stages reminder 3600s"
    with pytest.raises(UsageError, match=late):
        settings_from(parse(["worker", "--abandon-after", "2h"]))
    both = settings_from(parse(["worker", "--abandon-after", "2h", "--stages", "a:3h:incentive"]))
    assert both.crm.abandon.abandon_after == 7200.0


def test_a_child_worker_is_given_exactly_the_parents_rules(tmp_path: Path) -> None:
    """The argv round trip of demo, bench and replay --via-kafka loses no rule."""
    parent = replace(Settings(), crm=_non_default(), audit=True, log_format="json")
    rules = write_rules(parent, tmp_path / "rules.toml")
    argv = worker_command(parent, tmp_path / "data", rules)
    child = settings_from(build_parser().parse_args(argv[3:]))
    assert child.crm == parent.crm
    assert (child.audit, child.log_format, child.topics) == (True, "json", parent.topics)


def test_replay_decides_by_the_rules_file_and_names_its_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from streamcrm.cli import main

    from .test_replay import TAOBAO

    log = tmp_path / "taobao.csv"
    log.write_text(TAOBAO)
    rules = tmp_path / "rules.toml"
    rules.write_text("[contact]\nconsent_default = false\nholdout_share = 0\n")
    summaries = []
    for extra in ([], ["--rules", str(rules)]):
        assert main(["replay", "--format", "taobao", str(log), "--json", *extra]) == 0
        summaries.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    default, opted_out = summaries
    assert default["rules_version"] == rules_version(CrmConfig())
    assert opted_out["rules_version"] == rules_version(load_rules(rules))
    assert default["reminded"] + default["couponed"] + default["holdout"] > 0
    assert opted_out["reminded"] + opted_out["couponed"] + opted_out["holdout"] == 0
    assert opted_out["suppressed"] > 0


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
_NAMES = st.sampled_from([*RULES, "offers.nope", "nope.items"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_NAMES, _VALUES, max_size=4))
def test_any_rules_data_gives_a_config_or_one_rules_error(flat: dict[str, object]) -> None:
    """Whatever a file holds: a config, or a RulesError naming a key (never a traceback)."""
    data: dict[str, dict[str, object]] = {}
    for key, value in flat.items():
        section, name = key.split(".")
        data.setdefault(section, {})[name] = value
    try:
        config = rules_from(data)
    except RulesError as exc:
        text = str(exc)
        assert "\n" not in text
        assert any(key in text or f"[{key.split('.')[0]}]" in text for key in [*flat, *RULES]), text
    else:
        assert rules_from(tomllib.loads(to_toml(config))) == config


def test_a_json_log_line_keeps_a_traceback_on_one_line() -> None:
    import logging

    from streamcrm.logs import JsonFormatter

    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, "f.py", 1, "failed", (), sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    body = json.loads(line)
    assert body["message"] == "failed" and "ValueError: boom" in body["exc"]
