"""Business rules as a file: ``--rules rules.toml`` -> :class:`~streamcrm.decisions.CrmConfig`.

:data:`RULES` is the one mapping from a file key (``section.name``) to the CrmConfig field
it sets and the kind of value it takes; loading, validation, the normalized form, the
rules version and the file a child worker is given are all read from it. A key the file
leaves out keeps the CrmConfig default, so ``rules.toml`` at the repository top (every
default, documented) loads to exactly ``CrmConfig()`` (tests/unit/test_rules.py).

Durations are seconds or ``90s``/``30m``/``24h``/``7d`` strings. Unknown sections and keys
are errors, like out-of-range values: :class:`RulesError` names the key and what it allows.

>>> rules_from({"coupon": {"buy_anyway": 0.8}}).abandon.rule.buy_anyway
0.8
>>> rules_from({"coupon": {"buy_anyway": 2}})
Traceback (most recent call last):
...
streamcrm.rules.RulesError: coupon.buy_anyway: 2 is not allowed (a share between 0 and 1)
"""

from __future__ import annotations

import dataclasses
import hashlib
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from streamcrm.decisions import CrmConfig
from streamcrm.rules_values import (
    AMOUNT,
    BOOL,
    CONTACT_KINDS,
    COUNT,
    COUPON_TIERS,
    DURATION,
    EARLY_ACCESS,
    FACTOR,
    MULTIPLIERS,
    POSITIVE,
    QUIET_HOURS,
    SHARE,
    STAGES,
    TARGETING,
    TEXT,
    UTC_OFFSET,
    VIP_TIERS,
    Kind,
)  # fmt: skip


class RulesError(ValueError):
    """A rules file the worker must not start with; one line naming the key."""


# File key -> (CrmConfig field path, kind): the only place the two are matched; every
# other function here (checks across keys included) reads rules through it.
RULES: dict[str, tuple[str, Kind]] = {
    "abandoned_cart.abandon_after": ("abandon.abandon_after", DURATION),
    "abandoned_cart.stages": ("abandon.stages", STAGES),
    "abandoned_cart.attribution_window": ("abandon.attribution_window", DURATION),
    "abandoned_cart.coupon_ttl": ("abandon.coupon_ttl", DURATION),
    "abandoned_cart.incentive_window": ("abandon.incentive_window", DURATION),
    "coupon.buy_anyway": ("abandon.rule.buy_anyway", SHARE),
    "coupon.free_shipping_below": ("abandon.rule.free_shipping_below", AMOUNT),
    "coupon.max_redeemed": ("abandon.rule.max_redeemed", COUNT),
    "coupon.tiers": ("abandon.rule.tiers", COUPON_TIERS),
    "coupon.targeting": ("abandon.targeting.enabled", TARGETING),
    "coupon.uplift_min_per_arm": ("abandon.targeting.min_per_arm", COUNT),
    "coupon.explore_share": ("abandon.targeting.explore_share", SHARE),
    "coupon.margin": ("abandon.targeting.margin", SHARE),
    "coupon.free_shipping_cost": ("abandon.targeting.free_shipping_cost", AMOUNT),
    "contact.consent_default": ("contact.consent_default", BOOL),
    "contact.max_per_day": ("contact.max_per_day", COUNT),
    "contact.max_per_week": ("contact.max_per_week", COUNT),
    "contact.holdout_share": ("contact.holdout_share", SHARE),
    "contact.holdout_salt": ("contact.holdout_salt", TEXT),
    "contact.quiet_hours": ("contact.quiet_hours", QUIET_HOURS),
    "contact.utc_offset_hours": ("contact.utc_offset_h", UTC_OFFSET),
    "contact.kinds": ("contact.kinds", CONTACT_KINDS),
    "offers.items": ("offers.items", POSITIVE),
    "offers.throttle": ("offers.throttle_s", DURATION),
    "offers.click_window": ("offers.click_window_s", DURATION),
    "offers.buy_window": ("offers.buy_window_s", DURATION),
    "offers.max_candidates": ("offers.max_candidates", POSITIVE),
    "offers.learn": ("offers.learn", BOOL),
    "offers.exploration": ("offers.exploration", SHARE),
    "offers.exploration_slots": ("offers.exploration_slots", SHARE),
    "offers.exposure_pool": ("offers.exposure_pool", POSITIVE),
    "offers.exposure": ("offers.exposure", BOOL),
    "offers.tracked_skus": ("tracked_skus", POSITIVE),
    "profile.loyal_orders": ("profile.loyal_orders", POSITIVE),
    "profile.at_risk_factor": ("profile.at_risk_factor", FACTOR),
    "profile.churn_factor": ("profile.churn_factor", FACTOR),
    "profile.default_rhythm_days": ("profile.default_rhythm_days", FACTOR),
    "profile.min_rhythm_days": ("profile.min_rhythm_days", FACTOR),
    "profile.rhythm_weight": ("profile.rhythm_weight", SHARE),
    "profile.tier_window_days": ("profile.tier_window_days", FACTOR),
    "profile.points_per_unit": ("profile.points_per_unit", AMOUNT),
    "profile.tiers": ("profile.tiers", VIP_TIERS),
    "profile.multipliers": ("profile.multipliers", MULTIPLIERS),
    "complaints.first_reply": ("sla.first_reply_s", DURATION),
    "complaints.resolution": ("sla.resolution_s", DURATION),
    "complaints.max_open": ("sla.max_open", POSITIVE),
    "complaints.closed_memory": ("sla.closed_memory", COUNT),
    "complaints.hold_marketing_at_most": ("sla.suppress_max_s", DURATION),
    "abuse.threshold": ("abuse.threshold", SHARE),
    "abuse.flag_ttl": ("abuse.flag_ttl_s", DURATION),
    "abuse.clear_grace": ("abuse.clear_grace_s", DURATION),
    "abuse.abandon_after": ("abuse.abandon_after_s", DURATION),
    "flash_sales.early_access": ("flash.early_access", EARLY_ACCESS),
    "flash_sales.last_chance": ("flash.last_chance_s", DURATION),
    "flash_sales.interest_window": ("flash.interest_window_s", DURATION),
    "flash_sales.max_campaigns": ("flash.max_campaigns", POSITIVE),
    "pricing.bucket": ("pricing.demand.bucket_s", DURATION),
    "pricing.window_buckets": ("pricing.demand.window_buckets", POSITIVE),
    "pricing.baseline_time_constant": ("pricing.demand.baseline_s", DURATION),
    "pricing.z_min": ("pricing.z_min", FACTOR),
    "pricing.min_count": ("pricing.min_count", POSITIVE),
    "pricing.min_baseline": ("pricing.min_baseline_s", DURATION),
    "pricing.elasticity": ("pricing.elasticity", FACTOR),
    "pricing.max_change_percent": ("pricing.max_change_percent", AMOUNT),
    "pricing.min_interval": ("pricing.min_interval_s", DURATION),
    "pricing.max_skus": ("pricing.max_skus", POSITIVE),
    "churn.horizon": ("churn_horizon_s", DURATION),
    "churn.winback_items": ("winback_items", COUNT),
}
SECTIONS = tuple(dict.fromkeys(key.split(".")[0] for key in RULES))


def _get(config: Any, path: str) -> Any:
    for name in path.split("."):
        config = getattr(config, name)
    return config


def _set(config: Any, values: Mapping[str, Any]) -> Any:
    """``config`` with every ``path: value`` set, each dataclass rebuilt once (so its own
    checks see the final values, not a half-changed mix)."""
    nested: dict[str, dict[str, Any]] = {}
    changes: dict[str, Any] = {}
    for path, value in values.items():
        head, _, rest = path.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            changes[head] = value
    for head, inner in nested.items():
        changes[head] = _set(getattr(config, head), inner)
    return dataclasses.replace(config, **changes) if changes else config


def _flat(data: Mapping[str, Any]) -> dict[str, Any]:
    """``{"coupon": {"buy_anyway": 0.8}}`` -> ``{"coupon.buy_anyway": 0.8}``, refusing
    unknown sections and keys."""
    flat = {}
    for section, body in data.items():
        if section not in SECTIONS:
            msg = f"unknown section [{section}] (allowed: {', '.join(SECTIONS)})"
            raise RulesError(msg)
        if not isinstance(body, dict):
            msg = f"{section} must be a [{section}] table"
            raise RulesError(msg)
        for name, value in body.items():
            key = f"{section}.{name}"
            if key not in RULES:
                names = [k.split(".", 1)[1] for k in RULES if k.startswith(section + ".")]
                msg = f"unknown key {key} (allowed in [{section}]: {', '.join(names)})"
                raise RulesError(msg)
            flat[key] = value
    return flat


def rules_from(data: Mapping[str, Any], base: CrmConfig | None = None) -> CrmConfig:
    """The CrmConfig these rules describe; keys left out keep ``base``'s (the defaults)."""
    values = {}
    for key, value in _flat(data).items():
        path, kind = RULES[key]
        try:
            values[path] = kind.load(value)
        except (TypeError, ValueError, KeyError):
            msg = f"{key}: {_show(value)} is not allowed ({kind.allowed})"
            raise RulesError(msg) from None
    config = base or CrmConfig()
    _check_sla(values, config)
    try:
        config = _set(config, values)
    except ValueError as exc:  # AbandonConfig.__post_init__: stage order vs abandon_after
        now = {key: values.get(path, _get(config, path)) for key, (path, _) in RULES.items()}
        at = ", ".join(f"{st.name} {st.after:g}s" for st in now["abandoned_cart.stages"])
        after = now["abandoned_cart.abandon_after"]
        msg = f"abandoned_cart.stages: {exc} (abandon_after {after:g}s; stages {at})"
        raise RulesError(msg) from None
    return _checked_whole(config)


def _check_sla(values: Mapping[str, Any], config: CrmConfig) -> None:
    """SlaConfig refuses a first reply due after the resolution: say it by key."""
    first_path, end_path = RULES["complaints.first_reply"][0], RULES["complaints.resolution"][0]
    first = values.get(first_path, _get(config, first_path))
    end = values.get(end_path, _get(config, end_path))
    if not 0 < first <= end:
        msg = (
            f"complaints.first_reply: must be above 0 and at most resolution ({end:g}s), "
            f"not {first:g}s"
        )
        raise RulesError(msg)


def _checked_whole(config: CrmConfig) -> CrmConfig:
    """Rules that span keys, read by key (through RULES) like everything else."""

    def rule(key: str) -> Any:
        return _get(config, RULES[key][0])

    tiers, multipliers = rule("profile.tiers"), rule("profile.multipliers")
    missing = [name for name, _ in tiers if name not in multipliers]
    if missing:
        msg = (
            f"profile.multipliers: no multiplier for tier {missing[0]!r} "
            "(allowed: one per profile.tiers name, and 'none')"
        )
        raise RulesError(msg)
    at_risk, churn = rule("profile.at_risk_factor"), rule("profile.churn_factor")
    if not at_risk < churn:
        msg = f"profile.churn_factor: must be above at_risk_factor ({at_risk:g}), not {churn:g}"
        raise RulesError(msg)
    per_day, per_week = rule("contact.max_per_day"), rule("contact.max_per_week")
    if per_week < per_day:
        msg = f"contact.max_per_week: must be at least max_per_day ({per_day}), not {per_week}"
        raise RulesError(msg)
    return config


def _show(value: Any) -> str:
    text = (
        repr(value)
        if isinstance(value, str)
        else str(value).lower()
        if isinstance(value, bool)
        else str(value)
    )
    return text if len(text) <= 60 else text[:57] + "..."


def load_rules(path: str | Path, base: CrmConfig | None = None) -> CrmConfig:
    """Read and validate a rules file; every problem is one :class:`RulesError` line."""
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except OSError as exc:
        msg = f"cannot read {path}: {exc.strerror or exc}"
        raise RulesError(msg) from None
    except tomllib.TOMLDecodeError as exc:
        msg = f"{path} is not valid TOML: {exc}"
        raise RulesError(msg) from None
    try:
        return rules_from(data, base)
    except RulesError as exc:
        msg = f"{path}: {exc}"
        raise RulesError(msg) from None


def normalized(config: CrmConfig) -> dict[str, dict[str, Any]]:
    """Every rule's value, sections in file order, durations in seconds: the rules as data
    (what the version hashes and what a child worker is given)."""
    out: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    for key, (path, kind) in RULES.items():
        section, name = key.split(".")
        out[section][name] = kind.dump(_get(config, path))
    return out


def rules_version(config: CrmConfig) -> str:
    """A short hash of the normalized rules: two workers deciding alike show the same one.

    >>> rules_version(CrmConfig()) == rules_version(rules_from({"churn": {"horizon": "30d"}}))
    True
    """
    body = orjson.dumps(normalized(config), option=orjson.OPT_SORT_KEYS)
    return "rules-" + hashlib.sha256(body).hexdigest()[:12]


def to_toml(config: CrmConfig) -> str:
    """The rules as a TOML file that loads back to ``config`` exactly (floats by repr)."""
    lines = [f"# streamcrm rules {rules_version(config)}, written by streamcrm."]
    for section, body in normalized(config).items():
        lines.append(f"\n[{section}]")
        lines += [f"{name} = {_toml(value)}" for name, value in body.items()]
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return orjson.dumps(value).decode()  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return (
        "{ "
        + ", ".join(f"{orjson.dumps(k).decode()} = {_toml(v)}" for k, v in value.items())
        + " }"
    )
