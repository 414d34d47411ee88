"""Crash safety: lost create responses, SIGKILL mid-provision, the finalizer before any server.

The operator keeps no state of its own worth losing: after any crash it re-reads the Agent,
finds its server by ID or by labels and adopts it. These tests kill it (SIGKILL, no cleanup)
at several points of a provision and check that it converges with exactly one server and
leaves no orphan behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from aura_sandbox.harness import Sandbox
from tests.kube import Cluster
from tests.operator.harness import (
    OperatorProcess,
    agent_manifest,
    agent_uid,
    apply,
    apply_running,
    devices,
    events,
    get_agent,
    phase,
    servers_of,
    wait_for,
    wait_phase,
)

pytestmark = pytest.mark.integration


def test_lost_create_response_adopts_instead_of_duplicating(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    # The sandbox creates the server, then drops the connection without answering.
    sandbox.inject("response_lost", method="POST", path=r"^/v1/servers$", count=1)
    start_operator()
    agent = apply_running(cluster, namespace, "lost")
    servers = servers_of(sandbox, agent["metadata"]["uid"])
    assert len(servers) == 1
    assert agent["status"]["server"]["id"] == servers[0]["id"]
    counts = sandbox.request_counts()
    assert counts.get("POST /v1/servers", 0) == 1, counts


def _kill_when(
    op: OperatorProcess, ready: Callable[[], Any], what: str, timeout: float = 60
) -> None:
    wait_for(ready, timeout, interval=0.02, what=what)
    op.kill()
    time.sleep(0.3)  # let the sandbox move on while nobody watches
    op.start()


@pytest.mark.parametrize("agents", [2])
def test_sigkill_at_several_points_converges_without_duplicates_or_orphans(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    start_operator: Callable[..., OperatorProcess],
    agents: int,
) -> None:
    op = start_operator()
    names = [f"crash{i}" for i in range(agents)]
    for name in names:
        apply(cluster, agent_manifest(name, namespace))
    uids = {name: agent_uid(cluster, namespace, name) for name in names}

    def first_server_exists() -> bool:
        for name, uid in uids.items():
            if servers_of(sandbox, uid):
                # The finalizer was persisted before the first cloud object existed.
                agent = get_agent(cluster, namespace, name)
                assert agent is not None
                assert "aura.dev/finalizer" in agent["metadata"].get("finalizers", [])
                return True
        return False

    # 1: right after a create went out (the ID may not be in status yet).
    _kill_when(op, first_server_exists, "a server to exist")
    # 2: while configuring; 3: while joining the tailnet / probing health.
    _kill_when(op, lambda: phase(cluster, namespace, names[0]) == "Configuring", "Configuring")
    _kill_when(
        op,
        lambda: phase(cluster, namespace, names[-1]) in ("Networking", "Running"),
        "Networking",
    )

    for name in names:
        agent = wait_phase(cluster, namespace, name, "Running", timeout=90)
        servers = servers_of(sandbox, uids[name])
        assert len(servers) == 1, servers
        assert agent["status"]["server"]["id"] == servers[0]["id"]
        created = [e for e in events(cluster, namespace, name) if e["reason"] == "ServerCreated"]
        adopted = [e for e in events(cluster, namespace, name) if "Adopt" in e["reason"]]
        assert len(created) + len(adopted) <= 2

    # Killed once more in the middle of deletion: the cleanup still completes, no orphans.
    for name in names:
        cluster.kubectl("delete", "agent", name, "-n", namespace, "--wait=false")
    time.sleep(0.2)
    op.kill()
    op.start()
    for name in names:
        wait_for(lambda n=name: get_agent(cluster, namespace, n) is None, 60, what=f"{name} gone")
    assert [
        s for s in servers_of(sandbox) if s["labels"].get("aura.dev/agent-namespace") == namespace
    ] == []
    assert [d for d in devices(sandbox) if d["hostname"].startswith(f"aura-{namespace}-")] == []
