"""The decision flags and ``--rules`` -> :class:`~streamcrm.decisions.CrmConfig`.

The rules file (:mod:`streamcrm.rules`) is the base; a decision flag given, or its
environment variable set, overrides its key, checked exactly as the file's would be.
"""

from __future__ import annotations

import argparse
from typing import Any

from streamcrm.cli_flags import UsageError
from streamcrm.config import parse_stages
from streamcrm.decisions import CrmConfig
from streamcrm.rules import RulesError, load_rules, rules_from
from streamcrm.rules_values import STAGES

# Flag (its argparse dest) -> the rules key it overrides, and how its text becomes the
# value a rules file would hold.
FLAG_RULES: dict[str, tuple[str, Any]] = {
    "abandon_after": ("abandoned_cart.abandon_after", str),
    "stages": ("abandoned_cart.stages", lambda text: STAGES.dump(parse_stages(text))),
    "holdout": ("contact.holdout_share", float),
    "consent_default": ("contact.consent_default", lambda text: text == "yes"),
    "incentive_window": ("abandoned_cart.incentive_window", str),
    "churn_horizon": ("churn.horizon", str),
    "tracked_skus": ("offers.tracked_skus", int),
}


def crm_config(args: argparse.Namespace) -> CrmConfig:
    """The rules of a command with decision flags (``--rules`` and its overrides)."""
    overrides: dict[str, dict[str, Any]] = {}
    flags: dict[str, str] = {}  # rules key -> the flag that set it, for errors
    for dest, (key, convert) in FLAG_RULES.items():
        raw = getattr(args, dest, None)
        if raw is None:
            continue
        flag = "--" + dest.replace("_", "-")
        try:
            value = convert(raw)
        except ValueError as exc:
            msg = f"{flag}: {exc}"
            raise UsageError(msg) from None
        section, name = key.split(".")
        overrides.setdefault(section, {})[name] = value
        flags[key] = flag
    try:
        base = load_rules(args.rules) if getattr(args, "rules", None) else CrmConfig()
        return rules_from(overrides, base)
    except RulesError as exc:
        text = str(exc)
        key = text.split(":", 1)[0]
        raise UsageError(flags[key] + text[len(key) :] if key in flags else text) from None
