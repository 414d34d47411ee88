"""A pytest plugin: SIGTERM (a CI timeout, `kill`) ends the run the way Ctrl-C does, so the
session's fixtures still tear down what they started (the control plane, the real node and its
mounts, network namespaces and iptables chains) instead of leaving them running."""

from __future__ import annotations

import signal
from types import FrameType

import pytest


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    signal.signal(signal.SIGTERM, _interrupt)
