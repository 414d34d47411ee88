"""Warm pools end to end: the real operator fills an AgentPool from a golden image, a new Agent
takes a warm server (relabelled, device re-tagged and renamed, its own Secret pushed), the pool
refills, an unhealthy member is replaced, and SIGKILLs during binds never give one server to
two Agents nor leak one."""

from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from kubernetes import client

from aura.controller import naming
from aura.controller.clients.kube import AgentRef
from aura.models import GROUP, PLURAL, VERSION
from aura.pool_models import POOL_PLURAL
from aura_sandbox.harness import Sandbox
from tests.kube import Cluster
from tests.operator.checkpoint_harness import CHECKPOINT_FLAGS, create, get, wait_status
from tests.operator.harness import (
    OperatorProcess,
    agent_manifest,
    apply,
    devices,
    get_agent,
    servers_of,
    wait_for,
    wait_phase,
)
from tests.operator.test_operator_images import agent_image

pytestmark = pytest.mark.integration
Start = Callable[..., OperatorProcess]
GATEWAY_CONFIG = "home/openclaw/.openclaw/openclaw.json"


def pool_status(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    return (get(cluster, namespace, POOL_PLURAL, name) or {}).get("status") or {}


def members(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    items = cluster.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    return [
        a
        for a in items["items"]
        if "aura.dev/pool" in (a["metadata"].get("annotations") or {})
        and not a["metadata"].get("deletionTimestamp")
    ]


def warm(cluster: Cluster, namespace: str, pool: str, count: int, timeout: float = 180) -> None:
    wait_for(
        lambda: pool_status(cluster, namespace, pool).get("ready", 0) >= count,
        timeout=timeout,
        what=f"{count} warm servers in {pool}",
    )


def gateway_token(sandbox: Sandbox, server_id: int) -> str | None:
    url = f"{sandbox.ready.admin_url}/servers/{server_id}/disk/{GATEWAY_CONFIG}"
    raw = httpx.get(url, timeout=10).content
    token: str | None = json.loads(raw)["gateway"]["auth"].get("token")
    return token


def runtime_secret(cluster: Cluster, namespace: str, name: str, token: str) -> None:
    data = {"OPENCLAW_GATEWAY_TOKEN": token, "ANTHROPIC_API_KEY": "sk-ant-" + token}
    cluster.core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=name),
            data={k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        ),
    )


def start_pool(cluster: Cluster, namespace: str, **spec: Any) -> None:
    agent_image(cluster, namespace, "runtime", "2026.3.1")
    wait_status(cluster, namespace, "agentimages", "runtime", "Ready", timeout=120)
    create(cluster, namespace, POOL_PLURAL, "AgentPool", "warm", image="runtime", **spec)


def test_an_agent_takes_a_warm_server_and_the_pool_refills(
    cluster: Cluster, namespace: str, sandbox: Sandbox, start_operator: Start
) -> None:
    start_operator(**CHECKPOINT_FLAGS)
    start_pool(cluster, namespace, min=2, max=3)
    warm(cluster, namespace, "warm", 2)
    status = pool_status(cluster, namespace, "warm")
    assert status["target"] == 2 and status["costPerMonth"] > 0 and status["currency"]
    pooled = {m["status"]["server"]["id"]: m for m in members(cluster, namespace)}
    assert len(pooled) == 2
    for server_id, member in pooled.items():
        server = sandbox.server(server_id)
        assert server["image_id"] == status["imageID"]  # booted from the golden image
        assert server["gateway"] == "serving"
        assert member["spec"]["tailscale"]["tags"] == ["tag:aura-pool"]
    pool_devices = {d["id"] for d in devices(sandbox) if d["tags"] == ["tag:aura-pool"]}
    assert len(pool_devices) == 2

    runtime_secret(cluster, namespace, "acme-runtime", "acme-token-0123456789")
    apply(
        cluster, agent_manifest("acme", namespace, runtime={"secretRef": {"name": "acme-runtime"}})
    )
    acme = wait_phase(cluster, namespace, "acme", "Running", timeout=60)
    server_id = acme["status"]["server"]["id"]
    assert server_id in pooled, (server_id, list(pooled))
    server = sandbox.server(server_id)
    uid = acme["metadata"]["uid"]
    assert server["labels"]["aura.dev/agent-uid"] == uid
    assert server["labels"]["aura.dev/pool-served"] == "warm"
    assert (
        server["name"]
        == acme["status"]["server"]["name"]
        != pooled[server_id]["status"]["server"]["name"]
    )
    assert gateway_token(sandbox, server_id) == "acme-token-0123456789"  # the customer's own
    configured = next(c for c in acme["status"]["conditions"] if c["type"] == "Configured")
    assert "pushed to the warm server" in configured["message"]  # a push, not the playbook
    device_id = acme["status"]["tailscale"]["deviceId"]
    device = next(d for d in devices(sandbox) if d["node_id"] == device_id)
    assert device["tags"] == ["tag:aura-agent"]  # re-tagged from tag:aura-pool
    wanted = naming.tailnet_hostname(AgentRef(namespace, "acme", uid), None)
    assert device["name"].split(".")[0] == wanted  # renamed (the OS hostname stays)

    # The served member is gone, the pool refilled to two warm servers, neither the served one.
    wait_for(
        lambda: pool_status(cluster, namespace, "warm").get("served") == 1,
        timeout=30,
        what="served member retired",
    )
    warm(cluster, namespace, "warm", 2, timeout=60)
    now = {
        m["status"]["server"]["id"]
        for m in members(cluster, namespace)
        if m.get("status", {}).get("server")
    }
    assert server_id not in now
    assert get_agent(cluster, namespace, "acme")["status"]["phase"] == "Running"  # type: ignore[index]

    # An unhealthy warm server is replaced, not repaired.
    sick = next(iter(now))
    httpx.put(
        f"{sandbox.ready.admin_url}/servers/{sick}/health",
        json={"gateway": "unhealthy", "gateway_clears_on": "never"},
        timeout=10,
    ).raise_for_status()
    wait_for(
        lambda: all(s["id"] != sick for s in servers_of(sandbox)),
        timeout=60,
        what="unhealthy warm server deleted",
    )
    warm(cluster, namespace, "warm", 2, timeout=60)

    # Deleting the customer deletes its (formerly pooled) server; nothing else leaks.
    cluster.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "acme")
    wait_for(
        lambda: all(s["id"] != server_id for s in servers_of(sandbox)),
        timeout=30,
        what="acme's server deleted",
    )
    assert len(servers_of(sandbox)) == 2


def test_sigkill_during_binds_never_shares_or_leaks_a_server(
    cluster: Cluster, namespace: str, sandbox: Sandbox, start_operator: Start
) -> None:
    op = start_operator(**CHECKPOINT_FLAGS)
    start_pool(cluster, namespace, min=2, max=2)
    warm(cluster, namespace, "warm", 2)
    names = [f"burst-{i}" for i in range(4)]  # more Agents than warm servers
    for name in names:
        apply(cluster, agent_manifest(name, namespace))
    rng = random.Random(18)
    for _ in range(5):
        time.sleep(rng.uniform(0.2, 1.5))
        op.kill()
        op.start()
    agents = [wait_phase(cluster, namespace, n, "Running", timeout=120) for n in names]
    ids = [a["status"]["server"]["id"] for a in agents]
    assert len(set(ids)) == len(ids), ids  # no server bound to two Agents
    for agent in agents:
        server = sandbox.server(agent["status"]["server"]["id"])
        assert server["labels"]["aura.dev/agent-uid"] == agent["metadata"]["uid"]
    warm(cluster, namespace, "warm", 2, timeout=120)

    def settled() -> bool:
        member_ids = {m["status"]["server"]["id"] for m in members(cluster, namespace)
                      if (m.get("status") or {}).get("server")}  # fmt: skip
        live = {s["id"] for s in servers_of(sandbox)}
        return live == set(ids) | member_ids and len(member_ids) == 2

    wait_for(settled, timeout=60, what="every server an Agent's or a member's (none leaked)")
