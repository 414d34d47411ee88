"""Prerequisites before money, through the real operator, apiserver and sandbox.

An Agent whose runtime Secret is missing (or lacks the gateway token) waits Queued with a
condition naming the Secret and the key, and the sandbox sees not one Hetzner or Tailscale
request. Creating and fixing the Secret starts it within seconds, with no annotation by the
user: the operator watches Secrets. The health timer is slowed down here so that only the
watch can start the Agent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from aura_sandbox.harness import Sandbox
from tests.kube import Cluster
from tests.operator.harness import (
    OperatorProcess,
    agent_manifest,
    apply,
    condition,
    get_agent,
    wait_for,
    wait_phase,
)

pytestmark = pytest.mark.integration

SECRET = "gamma-runtime"


def cloud_calls(sandbox: Sandbox) -> dict[str, int]:
    """Every request the sandbox's Hetzner (/v1/) and Tailscale (/api/v2/) APIs answered."""
    counts = sandbox.request_counts()
    return {k: v for k, v in counts.items() if v and k.split()[1].startswith(("/v1/", "/api/v2/"))}


def waiting_message(cluster: Cluster, namespace: str, name: str) -> str | None:
    agent = get_agent(cluster, namespace, name)
    if not agent or not agent.get("status", {}).get("conditions"):
        return None
    server_ready = condition(agent, "ServerReady")
    if server_ready["reason"] != "WaitingForRuntimeSecret":
        return None
    return str(server_ready["message"])


def test_missing_runtime_secret_waits_without_cloud_calls_then_starts_when_it_appears(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    quiet = {"drift_interval_min": "3600", "drift_interval_max": "3600"}  # no fleet sweep
    start_operator(health_interval="600", sweep_interval="3600", cost_interval="3600", **quiet)
    # The fleet's cost refresh reads prices, servers and images once at start-up, for no Agent
    # in particular; what this Agent causes is measured against that.
    refresh = ("GET /v1/pricing", "GET /v1/servers", "GET /v1/images")
    wait_for(lambda: all(cloud_calls(sandbox).get(c) for c in refresh), 30, what="cost refresh")
    fleet = cloud_calls(sandbox)
    manifest: dict[str, Any] = agent_manifest("gamma", namespace)
    manifest["spec"]["runtime"] = {"secretRef": {"name": SECRET}}
    apply(cluster, manifest)

    message = wait_for(lambda: waiting_message(cluster, namespace, "gamma"), 30, what="waiting")
    assert SECRET in message and "does not exist" in message
    time.sleep(3)  # ten poll intervals: still nothing may happen
    agent = get_agent(cluster, namespace, "gamma")
    assert agent is not None
    assert agent["status"]["phase"] == "Queued", agent["status"]
    assert "provisioning" not in agent["status"]  # no attempt: no deadline, no budget
    assert cloud_calls(sandbox) == fleet

    # The Secret appears without the gateway token: the message names the missing key.
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name=SECRET),
        string_data={"ANTHROPIC_API_KEY": "sk-ant-" + "prereq-test"},
    )
    cluster.core.create_namespaced_secret(namespace, secret)
    wait_for(
        lambda: "OPENCLAW_GATEWAY_TOKEN" in (waiting_message(cluster, namespace, "gamma") or ""),
        15,
        what="message naming the missing key",
    )
    assert cloud_calls(sandbox) == fleet

    # Fixing the Secret starts provisioning within seconds (the watch, not a poll or timer).
    fixed = time.monotonic()
    cluster.core.patch_namespaced_secret(
        SECRET, namespace, {"stringData": {"OPENCLAW_GATEWAY_TOKEN": "gw-" + "prereq-test"}}
    )
    wait_for(lambda: cloud_calls(sandbox).get("POST /v1/servers"), 15, what="server create")
    started_within = time.monotonic() - fixed
    assert started_within < 10, started_within
    agent = wait_phase(cluster, namespace, "gamma", "Running", timeout=90)
    assert agent["status"]["server"]["id"]
    assert cloud_calls(sandbox)["POST /v1/servers"] == 1
    print(f"provisioning started {started_within:.1f}s after the Secret was fixed")
