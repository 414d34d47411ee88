"""Fixtures for the operator's integration tests: a sandbox and the real operator process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aura_sandbox.harness import Sandbox
from tests.kube import Cluster
from tests.operator.harness import OperatorProcess

TIME_SCALE = 0.02


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(time_scale=TIME_SCALE) as sb:
        yield sb


@pytest.fixture
def start_operator(
    cluster: Cluster, namespace: str, sandbox: Sandbox, tmp_path: Path
) -> Iterator[Callable[..., OperatorProcess]]:
    """Start the real operator for this test's namespace; stopped at teardown."""
    started: list[OperatorProcess] = []

    def start(env: dict[str, str] | None = None, **flags: Any) -> OperatorProcess:
        proc = OperatorProcess(
            cluster, namespace, sandbox, tmp_path / f"operator-{len(started)}.log", env, **flags
        )
        started.append(proc.start())
        return proc

    yield start
    for proc in started:
        proc.stop()
