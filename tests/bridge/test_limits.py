"""`LogRateLimit`: one line per message per interval, carrying the count of those it held back;
limits that contradict each other stop `aura bridge` at startup."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest

from aura.bridge.limits import LogRateLimit

REPO = Path(__file__).resolve().parents[2]


def test_one_line_per_interval_with_the_count_of_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    log = logging.getLogger("test.ratelimit")
    log.addFilter(LogRateLimit(interval=10.0, clock=lambda: now[0]))
    caplog.set_level(logging.WARNING, logger="test.ratelimit")
    for _ in range(500):
        log.warning("webhook rejected: %s", "invalid signature")
        now[0] += 0.01
    log.warning("another message")  # a different template has its own budget
    now[0] = 112.0
    log.warning("webhook rejected: %s", "timestamp outside tolerance")
    assert [r.getMessage() for r in caplog.records] == [
        "webhook rejected: invalid signature",
        "another message",
        "webhook rejected: timestamp outside tolerance (and 499 more like it in the last 12 s)",
    ]


def test_a_body_budget_below_the_largest_body_is_refused_at_startup(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(REPO / ".venv/bin/aura"), "bridge", "--max-buffered-bytes", "1000"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert proc.returncode == 2
    assert "--max-buffered-bytes: 1000 is below --max-body-bytes 1048576" in proc.stderr
