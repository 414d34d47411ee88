"""hack/lib/heartbeat.sh: a long build step prints a line every few seconds while it runs, stops
when the step ends (or when the script dies), and keeps the step's exit status."""

from __future__ import annotations

import re
import subprocess

from tests.kube import REPO

HEARTBEAT = REPO / "hack" / "lib" / "heartbeat.sh"


def bash(script: str) -> subprocess.CompletedProcess[str]:
    # The timeout catches a heartbeat that outlives its step: it would hold stderr open.
    return subprocess.run(
        ["bash", "-c", f"source {HEARTBEAT}; export AURA_HEARTBEAT_SECONDS=1; {script}"],
        capture_output=True,
        text=True,
        timeout=30,
    )


def beats(stderr: str, label: str) -> list[int]:
    return [int(s) for s in re.findall(rf"^t: still {label} \((\d+)s elapsed\)$", stderr, re.M)]


def test_a_long_step_reports_elapsed_time_until_it_ends() -> None:
    proc = bash("with_heartbeat t building sleep 3.5; echo rc=$?; sleep 2.5")
    assert proc.stdout.strip() == "rc=0"
    seen = beats(proc.stderr, "building")
    assert len(seen) >= 2 and seen == sorted(seen) and seen[-1] <= 4, proc.stderr
    # Nothing after the step ended (the script went on for 2.5 s more).
    assert len(seen) <= 4, proc.stderr


def test_a_short_step_says_nothing_and_the_exit_status_is_kept() -> None:
    proc = bash("with_heartbeat t quick sh -c 'exit 3'; echo rc=$?")
    assert proc.stdout.strip() == "rc=3"
    assert beats(proc.stderr, "quick") == []


def test_under_set_e_a_failing_step_stops_the_script_and_the_heartbeat() -> None:
    proc = bash(
        "set -e; step() { sleep 1.5; false; echo not-reached; };"
        " with_heartbeat t failing step; echo after"
    )
    assert proc.returncode == 1
    assert "not-reached" not in proc.stdout and "after" not in proc.stdout
    assert len(beats(proc.stderr, "failing")) <= 2, proc.stderr
