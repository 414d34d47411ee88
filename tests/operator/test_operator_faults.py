"""Fault handling through the real operator: rate limits, 5xx, failed actions, a server that
never boots (rollback, then a retry), a device that never joins, rejected credentials, and
permanent invalid input without a retry storm."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from aura.controller.clients.kube import AgentRef
from aura.controller.naming import server_name
from aura_sandbox.harness import Sandbox
from tests.kube import Cluster
from tests.operator.harness import (
    OperatorProcess,
    agent_manifest,
    agent_uid,
    annotate,
    apply,
    condition,
    events,
    get_agent,
    servers_of,
    wait_for,
    wait_phase,
)

pytestmark = pytest.mark.integration


def _apply(cluster: Cluster, namespace: str, name: str, **spec: object) -> tuple[str, str]:
    """Create the Agent; returns its UID and the server name the operator will use."""
    apply(cluster, agent_manifest(name, namespace, **spec))
    uid = agent_uid(cluster, namespace, name)
    return uid, server_name(AgentRef(namespace, name, uid))


def test_429_storm_and_5xx_are_retried_until_running(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    sandbox.inject("rate_limit", path=r"^/v1/servers", count=15)
    sandbox.inject("http_error", status=503, path=r"^/v1/servers$", method="POST", count=2)
    uid, _ = _apply(cluster, namespace, "storm")
    # Each 429 says the bucket is empty (RateLimit-Remaining: 0): with the default reserve the
    # operator would wait for a tenth of the bucket to refill after each one (the pacing unit
    # tests cover that); without it, only the back-off and the refill of one token.
    op = start_operator(rate_limit_reserve="0")
    agent = wait_phase(cluster, namespace, "storm", "Running", timeout=90)
    assert len(servers_of(sandbox, uid)) == 1
    assert agent["status"].get("provisioning") is None
    assert "ProvisioningFailed" not in {e["reason"] for e in events(cluster, namespace, "storm")}
    assert "RateLimited" in op.log() or "rate_limit" in op.log()


def test_failed_create_action_powers_the_server_on(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    uid, name = _apply(cluster, namespace, "action")
    sandbox.inject("action_error", command="create_server", server_name=name)
    start_operator()
    wait_phase(cluster, namespace, "action", "Running", timeout=60)
    assert len(servers_of(sandbox, uid)) == 1


def test_server_that_never_boots_rolls_back_to_failed_then_annotation_retries(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    uid, name = _apply(cluster, namespace, "noboot")
    sandbox.inject("server_never_boots", server_name=name)
    # A slow health timer: the retry below must be taken by the change handler at once.
    start_operator(boot_timeout="3", health_interval="600")
    agent = wait_phase(cluster, namespace, "noboot", "Failed", timeout=60)
    ready = condition(agent, "Ready")
    # A timeout is transient: it would retry by itself after nextAttemptAt (10-16 s here).
    assert ready["reason"] == "RetryingAfterFailure"
    assert "ServerNeverBooted" in ready["message"]
    assert agent["status"]["provisioning"]["consecutiveFailures"] == 1
    assert agent["status"]["provisioning"]["failedStep"] == "boot"
    # Rolled back: server and auth key gone, no retry storm while Failed.
    wait_for(lambda: servers_of(sandbox, uid) == [], 20, what="server deleted")
    secrets = {s.metadata.name for s in cluster.core.list_namespaced_secret(namespace).items}
    assert "noboot-tailnet-authkey" not in secrets
    creates = sandbox.request_counts().get("POST /v1/servers", 0)
    time.sleep(3)
    assert sandbox.request_counts().get("POST /v1/servers", 0) == creates

    annotate(cluster, namespace, "noboot", "aura.dev/retry", "1")
    agent = wait_phase(cluster, namespace, "noboot", "Running", timeout=60)
    assert agent["status"].get("provisioning") is None
    assert len(servers_of(sandbox, uid)) == 1


def test_device_that_never_joins_fails_the_networking_step(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    uid, name = _apply(cluster, namespace, "nojoin")
    sandbox.inject("device_never_joins", server_name=name)
    start_operator(tailnet_join_timeout="3")
    agent = wait_phase(cluster, namespace, "nojoin", "Failed", timeout=60)
    assert "DeviceNeverJoined" in condition(agent, "Ready")["message"]
    assert agent["status"]["provisioning"]["failedStep"] == "tailnet"
    wait_for(lambda: servers_of(sandbox, uid) == [], 20, what="server deleted")

    # A spec change starts a new attempt (the fault was used up: this one joins).
    cluster.custom.patch_namespaced_custom_object(
        "aura.dev",
        "v1alpha1",
        namespace,
        "agents",
        "nojoin",
        {"spec": {"desiredStateReason": "retry after tailnet fix"}},
    )
    wait_phase(cluster, namespace, "nojoin", "Running", timeout=60)


def test_invalid_hetzner_token_names_the_variable(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    _apply(cluster, namespace, "badtoken")
    start_operator(env={"HCLOUD_TOKEN": "not-the-token"})

    def rejected() -> dict[str, str] | None:
        agent = get_agent(cluster, namespace, "badtoken") or {}
        for c in agent.get("status", {}).get("conditions", []):
            if c["type"] == "ServerReady" and c["reason"] == "InvalidCredentials":
                return dict(c)
        return None

    c = wait_for(rejected, 30, what="InvalidCredentials condition")
    assert "HCLOUD_TOKEN" in c["message"]
    assert "not-the-token" not in c["message"]


def test_invalid_input_is_permanent_without_retry_storm(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    # A well-formed but unknown server type passes admission and fails at Hetzner.
    uid, _ = _apply(cluster, namespace, "badtype", server={"type": "zz99"})
    start_operator()
    agent = wait_phase(cluster, namespace, "badtype", "Failed", timeout=60)
    assert "InvalidInput" in condition(agent, "Ready")["message"]
    creates = sandbox.request_counts().get("POST /v1/servers", 0)
    assert creates == 1
    time.sleep(3)
    assert sandbox.request_counts().get("POST /v1/servers", 0) == creates
    assert servers_of(sandbox, uid) == []


def test_invalid_token_from_a_credentials_secret_names_that_secret(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    from kubernetes import client

    cluster.core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="aura-credentials"),
            string_data={"HCLOUD_TOKEN": "revoked-token-value"},
        ),
    )
    _apply(cluster, namespace, "badsecret")
    start_operator(credentials_secret=f"{namespace}/aura-credentials")

    def message() -> str | None:
        agent = get_agent(cluster, namespace, "badsecret") or {}
        for c in agent.get("status", {}).get("conditions", []):
            if c["type"] == "Ready" and c["reason"] == "InvalidCredentials":
                return str(c["message"])
        return None

    text = wait_for(message, 30, what="InvalidCredentials on Ready")
    assert f"HCLOUD_TOKEN (Secret {namespace}/aura-credentials)" in text
    assert "revoked-token-value" not in text
