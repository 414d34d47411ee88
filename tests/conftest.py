"""Fixtures shared by every test package: the real local control plane and namespaces."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.kube import Cluster, fresh_namespace, start_cluster, stop_cluster


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
