"""The repair ladder on the real apiserver against the sandbox: each rung, the cooldown and the
fleet short-circuit, with the sandbox's gateway and reachability faults."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from aura_sandbox.harness import Sandbox
from tests.kube import Cluster
from tests.operator.harness import (
    OperatorProcess,
    agent_manifest,
    apply,
    apply_running,
    devices,
    events,
    get_agent,
    servers_of,
    wait_for,
    wait_phase,
)

pytestmark = pytest.mark.integration

# The ladder at test speed: T1, T2, T3 in seconds (defaults 60, 180, 300).
LADDER = {
    "heal_restart_after": "2",
    "heal_reboot_after": "3",
    "heal_replace_after": "4",
    "health_timeout": "1",
}


def _health(sandbox: Sandbox, server_id: int, **body: object) -> None:
    url = f"{sandbox.ready.admin_url.rstrip('/')}/servers/{server_id}/health"
    httpx.put(url, json=body, timeout=10).raise_for_status()


def _reasons(cluster: Cluster, namespace: str, name: str) -> list[str]:
    return [e["reason"] for e in events(cluster, namespace, name)]


def _wait_event(cluster: Cluster, namespace: str, name: str, reason: str, n: int = 1) -> None:
    wait_for(
        lambda: _reasons(cluster, namespace, name).count(reason) >= n,
        60,
        what=f"{n} {reason} event(s) on {name}",
    )


def test_restart_heals_then_the_cooldown_escalates_to_a_reboot(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    start_operator(**LADDER)
    agent = apply_running(cluster, namespace, "ladder")
    server_id = agent["status"]["server"]["id"]

    _health(sandbox, server_id, gateway="unhealthy", gateway_clears_on="restart")
    _wait_event(cluster, namespace, "ladder", "RepairRestart")
    _wait_event(cluster, namespace, "ladder", "Repaired")
    agent = wait_phase(cluster, namespace, "ladder", "Running", timeout=30)
    assert agent["status"]["server"]["id"] == server_id
    repairs = agent["status"]["healing"]["repairs"]
    assert [r["rung"] for r in repairs] == ["restart"]
    assert repairs[0]["result"].startswith("gateway service restarted in ")
    assert "RepairReboot" not in _reasons(cluster, namespace, "ladder")

    # Failing again within the cooldown: the restart is not repeated, the server reboots.
    _health(sandbox, server_id, gateway="unhealthy", gateway_clears_on="restart")
    _wait_event(cluster, namespace, "ladder", "RepairReboot")
    _wait_event(cluster, namespace, "ladder", "Repaired", 2)
    agent = wait_phase(cluster, namespace, "ladder", "Running", timeout=30)
    reasons = _reasons(cluster, namespace, "ladder")
    assert reasons.count("RepairRestart") == 1 and reasons.count("RepairReboot") == 1
    assert agent["status"]["server"]["id"] == server_id


def test_a_wedged_gateway_that_a_restart_does_not_fix_is_rebooted(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    start_operator(**LADDER)
    agent = apply_running(cluster, namespace, "wedged")
    server_id = agent["status"]["server"]["id"]
    _health(sandbox, server_id, gateway="wedged", gateway_clears_on="reboot")
    _wait_event(cluster, namespace, "wedged", "Repaired")
    reasons = _reasons(cluster, namespace, "wedged")
    assert reasons.index("RepairRestart") < reasons.index("RepairReboot")
    assert "RepairReplace" not in reasons
    agent = wait_phase(cluster, namespace, "wedged", "Running", timeout=30)
    assert agent["status"]["server"]["id"] == server_id
    assert sandbox.server(server_id)["gateway"] == "serving"


def test_an_unreachable_server_is_replaced_blank(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    start_operator(**LADDER)
    agent = apply_running(cluster, namespace, "lost")
    uid, server_id = agent["metadata"]["uid"], agent["status"]["server"]["id"]
    _health(sandbox, server_id, reachable=False, reachable_clears_on="never")
    _wait_event(cluster, namespace, "lost", "RepairReplace")

    def replaced() -> dict[str, Any] | None:
        agent = get_agent(cluster, namespace, "lost") or {}
        status = agent.get("status", {})
        ok = status.get("phase") == "Running" and status["server"]["id"] != server_id
        return agent if ok else None

    agent = wait_for(replaced, 90, what="a replacement server, Running")
    found = {e["reason"]: e["message"] for e in events(cluster, namespace, "lost")}
    restart = found["RepairRestart"]
    assert "failed: could not restart the gateway" in restart and "unreachable" in restart
    assert "blank (no ready checkpoint)" in found["RepairReplace"]
    assert [s["id"] for s in servers_of(sandbox, uid)] == [agent["status"]["server"]["id"]]
    hostname = agent["status"]["tailscale"]["hostname"]
    assert [d["hostname"] for d in devices(sandbox)].count(hostname) == 1


def test_fleet_short_circuit_when_half_the_gateways_fail_at_once(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    start_operator(**LADDER)
    names = [f"fleet-{i}" for i in range(4)]
    for name in names:
        apply(cluster, agent_manifest(name, namespace))
    ids = {
        n: wait_phase(cluster, namespace, n, "Running", 90)["status"]["server"]["id"] for n in names
    }
    failing = names[:2]
    for name in failing:  # half the fleet at once: over the 40% default
        _health(sandbox, ids[name], gateway="unhealthy", gateway_clears_on="restart")
    for name in failing:
        _wait_event(cluster, namespace, name, "RepairsPaused")
    time.sleep(4)  # past T1 and T2: still nothing repaired
    for name in failing:
        reasons = _reasons(cluster, namespace, name)
        assert not any(r.startswith("Repair") and r != "RepairsPaused" for r in reasons)
        assert wait_phase(cluster, namespace, name, "Degraded", 5)

    # One recovers by itself: one of four is unhealthy (25%), repairs resume for the other.
    _health(sandbox, ids[failing[0]], gateway="healthy")
    _wait_event(cluster, namespace, failing[1], "RepairRestart")
    wait_phase(cluster, namespace, failing[1], "Running", 30)
