"""Fixtures for the Ansible tests: a throwaway loopback sshd and the test playbooks.

The sshd itself lives in tests/sshd.py so that other test packages (the operator's
integration tests) can start one the same way: `from tests.sshd import start_sshd, stop_sshd`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sshd import Sshd, start_sshd, stop_sshd

PLAYBOOKS = Path(__file__).parent / "playbooks"


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    """A real sshd on 127.0.0.1:<free port> that lets the current user in with a test key."""
    server = start_sshd(tmp_path / "sshd-run")
    yield server
    stop_sshd(server)


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """Where the test playbooks write (the sshd runs on this machine)."""
    path = tmp_path / "out"
    path.mkdir()
    return path
