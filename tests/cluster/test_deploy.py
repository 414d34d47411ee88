"""manifests/ deployed for real: the project image as Pods on a real node (hack/cluster.sh).

The kustomize base is applied as shipped except for what an installer must change anyway:
the two Secrets get working values (the sandbox's credentials, a webhook secret) and the
operator Deployment gets `AURA_SANDBOX_URL`, which points it at the simulated cloud running on
the host (10.89.0.1, reachable from the Pod network only). Everything else is real: the
kubelet runs the Pods through their probes, each component uses its own ServiceAccount and
RBAC, the controller-manager's namespace and garbage collectors run, kube-proxy routes the
Services, CoreDNS resolves `kubernetes.default.svc` for kopf.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import hcloud
import httpx
import pytest
import stripe
import yaml

from tests.cluster.conftest import HostSandbox, Node, cluster_sh, figure
from tests.kube import REPO

# The session fixtures build the image and bring the node up inside the first test's setup:
# minutes on a cold machine, beyond the suite's default per-test timeout.
pytestmark = pytest.mark.timeout(3600)

SYSTEM_NS = "aura-system"
WEBHOOK_SECRET = "whsec_cluster_" + uuid.uuid4().hex
API_TOKEN = "tok_cluster_" + uuid.uuid4().hex
T = TypeVar("T")
Obj = dict[str, Any]


def wait_for(fn: Callable[[], T | None], timeout: float, what: str, interval: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def render(sandbox: HostSandbox, source: Path = REPO / "manifests") -> list[Obj]:
    """`kubectl kustomize <source>` (default manifests/) with working Secrets and the operator
    in sandbox mode."""
    out = subprocess.run(
        ["kubectl", "kustomize", str(source)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    info = sandbox.info
    objects = [o for o in yaml.safe_load_all(out) if o]
    for obj in objects:
        name = obj["metadata"]["name"]
        if obj["kind"] == "Secret" and name == "aura-operator-credentials":
            obj["stringData"] = {
                "HCLOUD_TOKEN": info["hetzner_token"],
                "HCLOUD_ENDPOINT": info["hetzner_url"],
                "TAILSCALE_OAUTH_CLIENT_ID": info["tailscale_client_id"],
                "TAILSCALE_OAUTH_CLIENT_SECRET": info["tailscale_client_secret"],
                "TAILSCALE_TAILNET": info["tailscale_tailnet"],
                "TAILSCALE_BASE_URL": info["tailscale_url"],
            }
        elif obj["kind"] == "Secret" and name == "aura-bridge-secrets":
            obj["stringData"] = {
                "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "AURA_API_TOKENS": API_TOKEN,
            }
        elif obj["kind"] == "Deployment" and name == "aura-operator":
            containers = obj["spec"]["template"]["spec"]["containers"]
            container = next(c for c in containers if c["name"] == "operator")
            container["env"].append({"name": "AURA_SANDBOX_URL", "value": sandbox.admin_url})
    return objects


def apply(node: Node, objects: list[Obj]) -> None:
    node.kubectl("apply", "-f", "-", input="\n---\n".join(yaml.safe_dump(o) for o in objects))


@pytest.fixture(scope="module")
def deployed(node: Node, host_sandbox: HostSandbox) -> Iterator[Node]:
    """Aura installed from manifests/ and both Deployments available."""
    objects = render(host_sandbox)
    crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    apply(node, crds)
    for crd in crds:
        node.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s", f"crd/{crd['metadata']['name']}"
        )
    started = time.monotonic()
    apply(node, [o for o in objects if o["kind"] != "CustomResourceDefinition"])
    for deployment in ("aura-operator", "aura-bridge"):
        node.kubectl(
            "-n", SYSTEM_NS, "rollout", "status", f"deployment/{deployment}", "--timeout=240s"
        )
    figure("kustomize apply -> both Deployments available", f"{time.monotonic() - started:.0f}s")
    yield node
    # Uninstall (the CRDs stay): the Helm tests install the same objects under their release.
    rest = [o for o in objects if o["kind"] != "CustomResourceDefinition"]
    node.kubectl(
        "delete",
        "--ignore-not-found",
        "--wait=true",
        "--timeout=180s",
        "-f",
        "-",
        input="\n---\n".join(yaml.safe_dump(o) for o in rest),
    )


@pytest.fixture
def agent_ns(deployed: Node) -> str:
    name = f"c-{uuid.uuid4().hex[:8]}"
    deployed.kubectl("create", "namespace", name)
    return name


def agent(name: str, namespace: str) -> Obj:
    return {
        "apiVersion": "aura.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"desiredState": "running", "tailscale": {"tags": ["tag:aura-agent"]}},
    }


def phase(node: Node, namespace: str, name: str) -> str | None:
    out = node.kubectl(
        "-n", namespace, "get", "agent", name, "-o", "jsonpath={.status.phase}", check=False
    )
    return out.strip() or None


def wait_running(node: Node, namespace: str, name: str, timeout: float = 240) -> None:
    wait_for(
        lambda: phase(node, namespace, name) == "Running", timeout, f"{namespace}/{name} Running"
    )


def hetzner(sandbox: HostSandbox) -> hcloud.Client:
    return hcloud.Client(
        token=sandbox.info["hetzner_token"], api_endpoint=sandbox.info["hetzner_url"]
    )


def servers_in(sandbox: HostSandbox, namespace: str) -> list[str]:
    """Names of the (official client's) Hetzner servers labelled with this Agent namespace."""
    servers = hetzner(sandbox).servers.get_all(
        label_selector=f"aura.dev/agent-namespace={namespace}"
    )
    return [s.name for s in servers]


def operator_pods(node: Node) -> list[Obj]:
    pods = node.get_json(
        "-n", SYSTEM_NS, "get", "pods", "-l", "app.kubernetes.io/component=operator"
    )
    return [p for p in pods["items"] if not p["metadata"].get("deletionTimestamp")]


def active_operator(node: Node) -> str | None:
    """The pod whose keep-alive has the highest priority in ClusterKopfPeering `aura`."""
    peering = node.get_json("get", "clusterkopfpeering", "aura")
    records = {
        pid: rec for pid, rec in (peering.get("status") or {}).items() if isinstance(rec, dict)
    }
    if not records:
        return None
    return max(records, key=lambda pid: int(records[pid].get("priority", 0)))


def test_operator_and_bridge_pods_run_ready_under_their_own_service_accounts(
    deployed: Node,
) -> None:
    pods = deployed.get_json("-n", SYSTEM_NS, "get", "pods", "-l", "app.kubernetes.io/name=aura")
    by_component: dict[str, list[Obj]] = {}
    for pod in pods["items"]:
        by_component.setdefault(
            pod["metadata"]["labels"]["app.kubernetes.io/component"], []
        ).append(pod)
    assert sorted(by_component) == ["bridge", "operator"]
    for component, members in by_component.items():
        assert len(members) == 2, component
        for pod in members:
            ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
            assert ready["Ready"] == "True", pod["metadata"]["name"]
            assert pod["spec"]["serviceAccountName"] == f"aura-{component}"
            # Admitted by the ServiceAccount plugin: a projected API token is mounted.
            volumes = [v["name"] for v in pod["spec"]["volumes"]]
            assert any(v.startswith("kube-api-access-") for v in volumes), volumes
    name = by_component["operator"][0]["metadata"]["name"]
    uid = deployed.kubectl("-n", SYSTEM_NS, "exec", name, "-c", "operator", "--", "id", "-u")
    assert uid.strip() == "10001"


def test_operator_in_its_pod_reconciles_an_agent_to_running(
    deployed: Node, host_sandbox: HostSandbox, agent_ns: str
) -> None:
    apply(deployed, [agent("alpha", agent_ns)])
    wait_running(deployed, agent_ns, "alpha")
    assert len(servers_in(host_sandbox, agent_ns)) == 1
    status = deployed.get_json("-n", agent_ns, "get", "agent", "alpha")["status"]
    assert status.get("serverID") or status.get("serverId") or status.get("server"), status


def test_a_signed_stripe_event_sent_to_the_bridge_service_creates_an_agent(
    deployed: Node, agent_ns: str
) -> None:
    ip = deployed.kubectl(
        "-n", SYSTEM_NS, "get", "service", "aura-bridge", "-o", "jsonpath={.spec.clusterIP}"
    )
    sub, cus = f"sub_{uuid.uuid4().hex[:12]}", f"cus_{uuid.uuid4().hex[:12]}"
    event = {
        "id": f"evt_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "checkout.session.completed",
        "data": {
            "object": {
                "id": f"cs_{uuid.uuid4().hex[:12]}",
                "object": "checkout.session",
                "mode": "subscription",
                "customer": cus,
                "subscription": sub,
                "metadata": {"agent_name": "paid", "agent_namespace": agent_ns},
            }
        },
    }
    body = json.dumps(event)
    url = f"http://{ip.strip()}/v1/stripe/webhook"
    forged = httpx.post(
        url, content=body, headers={"Stripe-Signature": f"t={int(time.time())},v1={'ab' * 32}"}
    )
    assert forged.status_code == 400, forged.text
    signature = stripe.WebhookSignature.generate_signature_header(
        body, WEBHOOK_SECRET, timestamp=int(time.time())
    )
    response = httpx.post(
        url,
        content=body,
        headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    wait_running(deployed, agent_ns, "paid")
    spec = deployed.get_json("-n", agent_ns, "get", "agent", "paid")["spec"]
    assert spec["desiredState"] == "running"


def test_a_rolling_update_of_the_operator_while_agents_provision_loses_nothing(
    deployed: Node, host_sandbox: HostSandbox, agent_ns: str, image: str
) -> None:
    # A new image tag (same content: what changes is the Deployment's Pod template).
    new = image.rsplit(":", 1)[0] + ":0.1.0-rollout"
    subprocess.run(["docker", "tag", image, new], check=True)
    cluster_sh("load", new)
    names = [f"roll-{i}" for i in range(3)]
    apply(deployed, [agent(n, agent_ns) for n in names])
    deployed.kubectl("-n", SYSTEM_NS, "set", "image", "deployment/aura-operator", f"operator={new}")
    deployed.kubectl(
        "-n", SYSTEM_NS, "rollout", "status", "deployment/aura-operator", "--timeout=300s"
    )
    images = {p["spec"]["containers"][0]["image"] for p in operator_pods(deployed)}
    assert images == {new}, images
    for name in names:
        wait_running(deployed, agent_ns, name)
    assert len(servers_in(host_sandbox, agent_ns)) == len(names)  # no duplicate, none lost


def test_deleting_the_active_operator_pod_lets_the_standby_take_over(
    deployed: Node, host_sandbox: HostSandbox, agent_ns: str
) -> None:
    before = {p["metadata"]["name"] for p in operator_pods(deployed)}
    active = wait_for(
        lambda: active_operator(deployed) in before and active_operator(deployed),
        90,
        "an active replica",
    )
    deployed.kubectl("-n", SYSTEM_NS, "delete", "pod", active, "--wait=false")
    deleted_at = time.monotonic()
    apply(deployed, [agent("after-takeover", agent_ns)])
    wait_for(
        lambda: phase(deployed, agent_ns, "after-takeover"),
        120,
        "the first reconcile after takeover",
    )
    figure(
        "operator takeover after the active Pod is deleted (first reconcile)",
        f"{time.monotonic() - deleted_at:.1f}s",
    )
    wait_running(deployed, agent_ns, "after-takeover")
    assert len(servers_in(host_sandbox, agent_ns)) == 1  # one server per Agent, no duplicate
    # The Deployment replaced the deleted Pod: two replicas again, the deleted one gone.
    deployed.kubectl(
        "-n", SYSTEM_NS, "rollout", "status", "deployment/aura-operator", "--timeout=180s"
    )
    after = {p["metadata"]["name"] for p in operator_pods(deployed)}
    assert active not in after and len(after) == 2, after
    new_active = wait_for(
        lambda: active_operator(deployed) in after and active_operator(deployed), 90, "a new active"
    )
    assert new_active != active


def test_deleting_a_namespace_with_agents_completes_and_removes_every_cloud_object(
    deployed: Node, host_sandbox: HostSandbox, agent_ns: str
) -> None:
    apply(deployed, [agent("one", agent_ns), agent("two", agent_ns)])
    wait_running(deployed, agent_ns, "one")
    wait_running(deployed, agent_ns, "two")
    assert len(servers_in(host_sandbox, agent_ns)) == 2
    devices_before = len(host_sandbox.admin("/tailnet/devices")["devices"])
    deployed.kubectl("delete", "namespace", agent_ns, "--wait=false")
    started = time.monotonic()

    def gone() -> bool:
        out = deployed.kubectl("get", "namespace", agent_ns, check=False)
        return "NotFound" in out

    wait_for(gone, 300, f"namespace {agent_ns} to be deleted", interval=1)
    figure(
        "kubectl delete namespace (2 Running Agents) -> gone", f"{time.monotonic() - started:.0f}s"
    )
    assert servers_in(host_sandbox, agent_ns) == []
    assert len(host_sandbox.admin("/tailnet/devices")["devices"]) <= devices_before - 2
