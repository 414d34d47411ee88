"""Fixtures shared by every test package: the real local control plane and namespaces."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kube import Cluster, fresh_namespace, start_cluster, stop_cluster
from tests.sshd import Sshd, start_sshd, stop_sshd

pytest_plugins = ["tests.sigterm"]


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """A real kube-apiserver with the Aura CRDs installed; `KUBECONFIG` points at it."""
    c = start_cluster()
    yield c
    stop_cluster(c)


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of this test's own."""
    yield from fresh_namespace(cluster, request.node.name)


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    """A real sshd on 127.0.0.1:<free port> that lets the current user in with a test key."""
    server = start_sshd(tmp_path / "sshd-run")
    yield server
    stop_sshd(server)
