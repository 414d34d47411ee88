"""A killed test run still tears its session fixtures down (tests/sigterm.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SUITE = """
import time
import pytest

@pytest.fixture(scope="session")
def resource(tmp_path_factory):
    yield
    (MARKER).write_text("torn down")

def test_slow(resource):
    (STARTED).write_text("running")
    time.sleep(60)
"""


def run_and_kill(tmp_path: Path, plugin: list[str]) -> Path:
    marker, started = tmp_path / "marker", tmp_path / "started"
    body = SUITE.replace("(MARKER)", f"__import__('pathlib').Path({str(marker)!r})")
    body = body.replace("(STARTED)", f"__import__('pathlib').Path({str(started)!r})")
    (tmp_path / "test_suite.py").write_text(body)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugin,
         str(tmp_path / "test_suite.py")],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    return marker


def test_sigterm_runs_the_session_teardown(tmp_path: Path) -> None:
    assert run_and_kill(tmp_path, ["-p", "tests.sigterm"]).exists()


def test_without_the_plugin_sigterm_skips_it(tmp_path: Path) -> None:
    assert not run_and_kill(tmp_path, []).exists()  # what the plugin is for
