"""--share-learning and --share-every: off by default, parsed, checked, passed to children."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from streamcrm.cli import build_parser, settings_from
from streamcrm.cli_flags import UsageError
from streamcrm.config import Settings
from streamcrm.worker_process import worker_command, write_rules


def test_sharing_is_off_unless_asked_and_the_interval_is_parsed() -> None:
    parse = build_parser().parse_args
    default = settings_from(parse(["worker"]))
    assert (default.share_learning, default.share_every_s) == (False, 5.0)
    on = settings_from(parse(["worker", "--share-learning", "--share-every", "2s"]))
    assert (on.share_learning, on.share_every_s) == (True, 2.0)
    with pytest.raises(UsageError, match=r"^--share-every: must be more than 0"):
        settings_from(parse(["worker", "--share-every", "0s"]))


@pytest.mark.parametrize("share", [False, True])
def test_a_child_worker_shares_as_its_parent(tmp_path: Path, share: bool) -> None:
    parent = replace(Settings(), share_learning=share, share_every_s=1.5)
    argv = worker_command(parent, tmp_path / "data", write_rules(parent, tmp_path / "r.toml"))
    child = settings_from(build_parser().parse_args(argv[3:]))
    assert child.share_learning is share
    assert child.share_every_s == (1.5 if share else 5.0)
