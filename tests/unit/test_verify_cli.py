"""``streamcrm verify`` argument errors: one line, no traceback."""

from __future__ import annotations

import pytest

from streamcrm.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--events", "3"], "--events must be at least 10"),
        (["--kills", "-1"], "--kills must be >= 0"),
        (["--redis-outage", "--redis-url", "redis://127.0.0.1:1/0"], "needs verify's own"),
    ],
)
def test_bad_arguments_say_what_to_fix(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", *argv]) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
