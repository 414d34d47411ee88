"""The whole life of an Agent on the real apiserver and the sandbox, through the real operator.

running (every phase, status fields, conditions, events with durations) -> stopped -> running
(same server, no re-provisioning) -> suspended (with its reason) -> deleted (record stays),
then `kubectl delete` of a second Agent (finalizer cleanup, object gone). Secrets never show
up in status, events or the operator's log.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from aura_sandbox.harness import Sandbox
from tests.kube import Cluster
from tests.operator.harness import (
    OperatorProcess,
    apply_running,
    condition,
    devices,
    events,
    get_agent,
    patch_spec,
    servers_of,
    wait_for,
    wait_phase,
)

pytestmark = pytest.mark.integration

PHASES = ["Queued", "Provisioning", "Configuring", "Networking", "Running"]


def _secret_values(cluster: Cluster, namespace: str, name: str) -> list[str]:
    import base64

    secret = cluster.core.read_namespaced_secret(name, namespace)
    return [base64.b64decode(v).decode() for v in (secret.data or {}).values()]


def test_lifecycle_running_stopped_running_suspended_deleted(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    op = start_operator()
    agent = apply_running(cluster, namespace, "alpha")
    status = agent["status"]
    uid = agent["metadata"]["uid"]

    # Status records the server, the device and the generation it reflects.
    server = status["server"]
    assert server["id"] and server["name"].startswith(f"aura-{namespace}-alpha-")
    assert server["ipv4"] and server["ipv6"] and server["location"] == "nbg1"
    assert server["type"] == "cx22" and server["status"] == "running"
    assert status["tailscale"]["deviceId"] and status["tailscale"]["ipv4"].startswith("100.")
    assert status["tailscale"]["ipv6"]
    assert status["observedGeneration"] == agent["metadata"]["generation"]
    for type_ in ("ServerReady", "Configured", "TailnetJoined", "Healthy", "Ready"):
        c = condition(agent, type_)
        assert c["status"] == "True", c
        assert c["reason"] and c["message"] and c["observedGeneration"] == 1
    assert "aura.dev/finalizer" in agent["metadata"]["finalizers"]

    # Every phase was an Event, each saying how long the previous phase took, listed in the
    # order they happened (microsecond eventTime), and chaining "A -> B" without a gap.
    history = events(cluster, namespace, "alpha")
    assert [e["reason"] for e in history if e["reason"] in PHASES] == PHASES, history
    transitions = {}
    for e in history:
        found = re.fullmatch(r"(\S+) -> (\w+) after \d+\.\d+s in \S+", e["message"] or "")
        if e["reason"] in PHASES and found:
            transitions[found.group(1)] = found.group(2)
    chain, at = [], "(new)"
    while at in transitions and len(chain) < 10:
        at = transitions[at]
        chain.append(at)
    assert chain == PHASES, transitions

    # The server was created once, labelled as ours, with cloud-init that syncs time first.
    [sim] = servers_of(sandbox, uid)
    assert sim["id"] == server["id"]
    labels = sim["labels"]
    assert labels["aura.dev/managed-by"] == "aura-operator"
    assert labels["aura.dev/agent-namespace"] == namespace
    assert labels["aura.dev/agent-name"] == "alpha"

    # Stop: graceful shutdown, disk kept, phase Stopped.
    patch_spec(cluster, namespace, "alpha", {"desiredState": "stopped"})
    agent = wait_phase(cluster, namespace, "alpha", "Stopped", timeout=60)
    assert condition(agent, "ServerReady")["reason"] == "PoweredOff"
    assert condition(agent, "Ready")["reason"] == "Stopped"
    [sim] = servers_of(sandbox, uid)
    assert sim["status"] == "off"

    # Running again: the same server powers on, no re-provisioning.
    patch_spec(cluster, namespace, "alpha", {"desiredState": "running"})
    agent = wait_phase(cluster, namespace, "alpha", "Running", timeout=60)
    messages = [e["message"] or "" for e in events(cluster, namespace, "alpha")]
    assert any(m.startswith("Stopped -> Starting after") for m in messages), messages
    assert sum(" -> Provisioning after " in m for m in messages) == 1, messages
    assert agent["status"]["server"]["id"] == server["id"]
    assert len(servers_of(sandbox, uid)) == 1
    created = [e for e in events(cluster, namespace, "alpha") if e["reason"] == "ServerCreated"]
    assert len(created) == 1

    # Suspended: like stopped, with the reason.
    patch_spec(
        cluster,
        namespace,
        "alpha",
        {"desiredState": "suspended", "desiredStateReason": "invoice payment failed"},
    )
    agent = wait_phase(cluster, namespace, "alpha", "Suspended", timeout=60)
    ready = condition(agent, "Ready")
    assert ready["reason"] == "Suspended" and ready["message"] == "invoice payment failed"
    assert agent["status"]["message"] == "invoice payment failed"

    # Deleted: device, server and Secrets removed; the Agent stays as a record.
    auth_secret = "alpha-tailnet-authkey"
    secret_values = _secret_values(cluster, namespace, auth_secret)
    secret_values += _secret_values(cluster, namespace, "alpha-ssh")
    patch_spec(cluster, namespace, "alpha", {"desiredState": "deleted"})
    agent = wait_phase(cluster, namespace, "alpha", "Deleted", timeout=60)
    assert servers_of(sandbox, uid) == []
    device_id = status["tailscale"]["deviceId"]
    assert device_id not in {d["node_id"] for d in devices(sandbox)}
    names = {s.metadata.name for s in cluster.core.list_namespaced_secret(namespace).items}
    assert {auth_secret, "alpha-ssh"}.isdisjoint(names)
    assert get_agent(cluster, namespace, "alpha") is not None

    # No secret ever appeared in status, events or the operator's log.
    op.stop()
    visible = json.dumps(agent) + json.dumps(events(cluster, namespace, "alpha"), default=str)
    log = op.log()
    for value in secret_values:
        for line in value.strip().splitlines():
            if len(line) > 20 and "ssh-ed25519" not in line:  # public keys are not secret
                assert line not in visible
                assert line not in log


def test_kubectl_delete_runs_finalizer_cleanup(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    operator = start_operator(log_format="json")
    agent = apply_running(cluster, namespace, "beta")
    uid = agent["metadata"]["uid"]
    device_id = agent["status"]["tailscale"]["deviceId"]

    # Structured logs: one JSON object per line, each pass with agent, step, duration, outcome.
    records = [json.loads(line) for line in operator.log().splitlines() if line.startswith("{")]
    passes = [r for r in records if r.get("agent") == f"{namespace}/beta" and "outcome" in r]
    steps = {r["step"] for r in passes}
    assert (
        {"server", "health"} <= steps <= {None, "server", "boot", "configure", "tailnet", "health"}
    )
    assert all(isinstance(r["duration_ms"], float) for r in passes)
    assert {"done", "wait"} <= {r["outcome"] for r in passes}

    cluster.kubectl("delete", "agent", "beta", "-n", namespace, "--wait=false")
    wait_for(lambda: get_agent(cluster, namespace, "beta") is None, 60, what="agent gone")
    assert servers_of(sandbox, uid) == []
    assert device_id not in {d["node_id"] for d in devices(sandbox)}
    names = {s.metadata.name for s in cluster.core.list_namespaced_secret(namespace).items}
    assert {"beta-tailnet-authkey", "beta-ssh"}.isdisjoint(names)


def test_cleanup_continues_past_a_failing_step_and_retries_it(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    start_operator()
    agent = apply_running(cluster, namespace, "gamma")
    uid = agent["metadata"]["uid"]
    device_id = agent["status"]["tailscale"]["deviceId"]
    # The tailnet refuses the device deletion twice; the server must go regardless.
    sandbox.inject("http_error", status=500, method="DELETE", path=r"^/api/v2/device/", count=2)
    patch_spec(cluster, namespace, "gamma", {"desiredState": "deleted"})
    wait_for(lambda: servers_of(sandbox, uid) == [], 30, what="server deleted")
    agent = wait_phase(cluster, namespace, "gamma", "Deleted", timeout=60)
    assert device_id not in {d["node_id"] for d in devices(sandbox)}
    assert sandbox.call(lambda world: world.faults.list()) == []  # both refusals were hit
