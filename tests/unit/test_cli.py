"""CLI errors: one line saying what is wrong and how to fix it, non-zero exit, no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from streamcrm.tansu import free_port


def streamcrm(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamcrm", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["generate", "--events", "lots"], "invalid int value"),
        (["worker", "--partitions", "0"], "--partitions must be at least 1"),
        (["generate", "--events", "10", "--bad", "11"], "--bad 11 is more than --events 10"),
        (["worker", "--topic-cart", "storefront.browse"], "three different topics"),
        (["teleport"], "invalid choice"),
        (["worker", "--resync-rate", "0"], "--resync-rate must be above 0"),
        (["worker", "--fast-rebalance", "--session-timeout", "2s"], "between 3s"),
        (["worker", "--session-timeout", "5s"], "between 9s"),
        (["worker", "--session-timeout", "soon"], "is not a duration"),
        (["worker", "--deadletter-retention", "soon"], "--deadletter-retention: "),
        (["forget", "two words"], "cannot send the request: customer_id"),
        (["forget", "c1", "--request-id", "x" * 200], "cannot send the request: request_id"),
        (["worker", "--erasure-hold", "forever"], "is not a duration"),
    ],
)
def test_bad_flags_say_what_is_wrong(args: list[str], needle: str) -> None:
    result = streamcrm(*args)
    assert result.returncode == 2
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["generate", "worker", "forget"])
def test_unreachable_broker_is_one_clear_line(command: str) -> None:
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    flags = {"generate": ("--events", "5"), "worker": ("--no-redis",), "forget": ("c1",)}
    result = streamcrm(command, "--broker", dead, *flags[command])
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"cannot reach the Kafka broker at {dead}" in lines[0]
    assert "KAFKA_BOOTSTRAP_SERVERS" in lines[0]


def test_worker_settings_carry_membership_session_and_drills(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from streamcrm.cli import build_parser, settings_from

    monkeypatch.setenv("STREAMCRM_DRILL_CRASH_MARKER", "boom")
    monkeypatch.setenv("STREAMCRM_DRILL_SEND_DELAY_S", "0.5")
    args = build_parser().parse_args(
        ["worker", "--fast-rebalance", "--session-timeout", "6s", "--group-instance-id", "w-1"]
    )
    settings = settings_from(args)
    assert (settings.session_timeout_s, settings.group_instance_id) == (6.0, "w-1")
    assert (settings.drills.crash_marker, settings.drills.send_delay_s) == (b"boom", 0.5)
    monkeypatch.delenv("STREAMCRM_DRILL_CRASH_MARKER")
    monkeypatch.delenv("STREAMCRM_DRILL_SEND_DELAY_S")
    plain = settings_from(build_parser().parse_args(["worker"]))
    assert (plain.session_timeout_s, plain.group_instance_id) == (None, None)
    assert plain.drills.crash_marker is None and plain.drills.send_delay_s == 0.0
