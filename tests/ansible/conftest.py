"""Fixtures for the Ansible tests: the test playbooks and their output directory.

The `sshd` fixture (a throwaway loopback sshd, from tests/sshd.py) is in tests/conftest.py,
shared with the operator's integration tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

PLAYBOOKS = Path(__file__).parent / "playbooks"


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """Where the test playbooks write (the sshd runs on this machine)."""
    path = tmp_path / "out"
    path.mkdir()
    return path
