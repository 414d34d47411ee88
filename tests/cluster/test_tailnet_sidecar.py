"""The operator reaches the tailnet from its Pod only through the tailnet sidecar (issue 13, 4).

`manifests/` is deployed with the production component `manifests/components/tailnet-sidecar`
on the real node (hack/cluster.sh). The sidecar container runs the real Tailscale daemon,
`tailscaled` v1.102.5 built from the Go module proxy (`hack/cluster.sh tailscaled`), in
userspace networking mode with its SOCKS5 server and outbound HTTP proxy on 127.0.0.1:1055:
the argv that containerboot, the official image's entrypoint, builds from the component's
TS_USERSPACE, TS_STATE_DIR, TS_SOCKS5_SERVER and TS_OUTBOUND_HTTP_PROXY_LISTEN
(cmd/containerboot/tailscaled.go), plus --no-logs-no-support. The test patches only that
container's image and command (the official image cannot be pulled here), plus a user id of its
own so that the Pod's firewall can tell the proxy's connections from the operator's.

The daemon is not logged in to a control server (the sandbox simulates Tailscale's API, not
its coordination server). In userspace mode tailscaled dials every destination outside its
tailnet routes with the host's dialer, so its proxies carry the operator's connections to the
test's "tailnet hosts" on the node's address (10.89.0.1) just as, logged in, they carry them
to 100.x addresses over WireGuard: the operator's side of the path is the production one.

What is proven, in the operator's own container (uid 10001, the Pod's environment):
- the operator minted the sidecar's auth key (tagged tag:aura-operator, reusable, ephemeral)
  into its Secret, and the sidecar, which reads it from there, started; an Agent reconciles to
  Running with its gateway probes carried by the sidecar (a counting rule in the Pod's network
  namespace sees the sidecar's user open connections to the sandbox);
- a gateway probe and an Ansible run (ssh with the SOCKS5 ProxyCommand, the production wiring
  from `build_operator`) reach a gateway and an sshd on the host through the sidecar;
- no direct connection is attempted: a rule in the Pod's network namespace rejects new TCP
  connections from uid 10001 to those hosts and counts them; the count stays 0 with the proxy,
  and the same run without the proxy is rejected and counted (the guard works).
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.cluster.conftest import NODE_IP, HostSandbox, Node, cluster_sh, figure
from tests.cluster.test_deploy import (
    SYSTEM_NS,
    Obj,
    agent,
    apply,
    operator_pods,
    render,
    servers_in,
    wait_for,
    wait_running,
)
from tests.kube import REPO
from tests.sshd import SSHD, write_config

pytestmark = pytest.mark.timeout(3600)

COMPONENT = REPO / "manifests" / "components" / "tailnet-sidecar"
OPERATOR_UID = 10001
SIDECAR_UID = 10002  # its own user: the Pod's firewall tells its connections apart
PROXY = "127.0.0.1:1055"


@dataclass
class Gateway:
    """An HTTP /readyz on the node's address: a gateway on the tailnet, as the Pod sees it."""

    port: int
    clients: list[str]


class _Readyz(BaseHTTPRequestHandler):
    clients: list[str]

    def do_GET(self) -> None:
        self.clients.append(self.client_address[0])
        body = json.dumps({"ready": True}).encode()
        self.send_response(200 if self.path == "/readyz" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def gateway(node: Node) -> Iterator[Gateway]:
    clients: list[str] = []
    handler = type("Readyz", (_Readyz,), {"clients": clients})
    server = ThreadingHTTPServer((NODE_IP, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Gateway(port=server.server_address[1], clients=clients)
    server.shutdown()


@dataclass
class HostSshd:
    port: int
    user: str
    client_private_key: str
    host_public_key: str
    log: Path


@pytest.fixture(scope="module")
def node_sshd(node: Node, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostSshd]:
    """A real sshd on the node's address (tests/sshd.py's config, listening on 10.89.0.1)."""
    work = tmp_path_factory.mktemp("node-sshd")
    with socket.socket() as s:
        s.bind((NODE_IP, 0))
        port = s.getsockname()[1]
    user = getpass.getuser()
    private, host_public = write_config(work / "conf", port=port, login_user=user)
    config = work / "conf" / "sshd_config"
    config.write_text(
        config.read_text().replace("ListenAddress 127.0.0.1", f"ListenAddress {NODE_IP}")
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    log = work / "sshd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def banner() -> bool:
        try:
            with socket.create_connection((NODE_IP, port), timeout=1) as s:
                return s.recv(64).startswith(b"SSH-")
        except OSError:
            return False

    wait_for(banner, 15, "sshd on the node's address")
    yield HostSshd(port, user, private, host_public, log)
    os.killpg(proc.pid, signal.SIGTERM)  # sshd and its sessions: its own process group
    proc.wait(10)


def sidecar_objects(sandbox: HostSandbox, tmp_path: Path) -> list[Obj]:
    """manifests/ + the tailnet-sidecar component, with the sidecar running the real tailscaled."""
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    overlay.joinpath("kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": [os.path.relpath(REPO / "manifests", overlay)],
                "components": [os.path.relpath(COMPONENT, overlay)],
            }
        )
    )
    objects = render(sandbox, overlay)
    operator = next(
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "aura-operator"
    )
    sidecar = next(
        c for c in operator["spec"]["template"]["spec"]["containers"] if c["name"] == "tailscale"
    )
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    assert env["TS_USERSPACE"] == "true"
    listen = env["TS_SOCKS5_SERVER"]
    assert listen == env["TS_OUTBOUND_HTTP_PROXY_LISTEN"] == PROXY
    # What the official image's entrypoint runs for these settings; the state in the
    # component's volume, no log upload to Tailscale from a test.
    sidecar["image"] = tailscaled_image()
    sidecar["imagePullPolicy"] = "Never"
    sidecar["command"] = [
        "/tailscaled",
        "--tun=userspace-networking",
        f"--socks5-server={listen}",
        f"--outbound-http-proxy-listen={listen}",
        f"--statedir={env['TS_STATE_DIR']}",
        "--socket=/tmp/tailscaled.sock",
        "--no-logs-no-support",
    ]
    sidecar["securityContext"]["runAsUser"] = SIDECAR_UID
    return objects


def tailscaled_image() -> str:
    return "aura.local/tailscaled:" + _TAILSCALE_VERSION


_TAILSCALE_VERSION = re.search(
    r'TAILSCALE_VERSION="\$\{AURA_TAILSCALE_VERSION:-([^}]+)\}"',
    (REPO / "hack" / "cluster.sh").read_text(),
).group(1)  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def with_sidecar(
    node: Node, host_sandbox: HostSandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Node]:
    """Aura from manifests/ + the tailnet-sidecar component, both Deployments available."""
    started = time.monotonic()
    cluster_sh("tailscaled")
    cluster_sh("images")
    cluster_sh("load", tailscaled_image())
    figure("tailscaled (binary cached) image + import", f"{time.monotonic() - started:.0f}s")
    objects = sidecar_objects(host_sandbox, tmp_path_factory.mktemp("sidecar"))
    crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    apply(node, crds)
    for crd in crds:
        node.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s", f"crd/{crd['metadata']['name']}"
        )
    rest = [o for o in objects if o["kind"] != "CustomResourceDefinition"]
    started = time.monotonic()
    apply(node, rest)
    for deployment in ("aura-operator", "aura-bridge"):
        node.kubectl(
            "-n", SYSTEM_NS, "rollout", "status", f"deployment/{deployment}", "--timeout=300s"
        )
    figure(
        "apply with the tailnet sidecar -> both Deployments available",
        f"{time.monotonic() - started:.0f}s",
    )
    yield node
    node.kubectl(
        "delete",
        "--ignore-not-found",
        "--wait=true",
        "--timeout=180s",
        "-f",
        "-",
        input="\n---\n".join(yaml.safe_dump(o) for o in rest),
    )
    node.kubectl("-n", SYSTEM_NS, "delete", "secret", "aura-operator-tailnet", "--ignore-not-found")


def pod_netns(pod_ip: str) -> str:
    """The CNI network namespace (`ip netns`) that holds `pod_ip`."""
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for name in [line.split()[0] for line in names.splitlines() if line.startswith("cni-")]:
        addrs = subprocess.run(
            ["ip", "netns", "exec", name, "ip", "-4", "-o", "addr"], capture_output=True, text=True
        ).stdout
        if f"inet {pod_ip}/" in addrs:
            return name
    raise AssertionError(f"no network namespace holds {pod_ip}")


class PodRule:
    """One firewall rule in a Pod's network namespace (OUTPUT chain), for the duration of a
    `with` block: new TCP connections from `uid` to `ports` on the node's address are counted
    and, with `reject`, refused. Rules in the Pod's own namespace see which container (by user
    id) opens a connection, which the node's firewall cannot: the containers share one address."""

    def __init__(self, netns: str, uid: int, ports: list[int], *, reject: bool) -> None:
        self.netns = netns
        self.comment = f"aura-test-{uid}-{'reject' if reject else 'count'}"
        self.rule = [
            "OUTPUT", "-p", "tcp", "--syn", "-d", NODE_IP, "-m", "multiport",
            "--dports", ",".join(map(str, ports)), "-m", "owner", "--uid-owner", str(uid),
            "-m", "comment", "--comment", self.comment,
        ]  # fmt: skip
        if reject:
            self.rule += ["-j", "REJECT", "--reject-with", "tcp-reset"]

    def iptables(self, *args: str) -> str:
        return subprocess.run(
            ["ip", "netns", "exec", self.netns, "iptables", *args],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    def __enter__(self) -> PodRule:
        self.iptables("-I", *self.rule)
        return self

    def __exit__(self, *exc: object) -> None:
        self.iptables("-D", *self.rule)

    def connections(self) -> int:
        """New connections the rule has matched so far (one SYN each, retries included)."""
        out = self.iptables("-L", "OUTPUT", "-v", "-n", "-x")
        for line in out.splitlines():
            if f"/* {self.comment} */" in line:
                return int(line.split()[0])
        raise AssertionError(f"rule {self.comment} is gone:\n{out}")


# Run inside the operator's container: the production wiring (`build_operator`) with the
# Pod's AURA_TAILNET_PROXY (or none), a gateway probe and an Ansible run over SSH.
IN_POD = r"""
import asyncio, json, os, sys, tempfile
from pathlib import Path
from types import SimpleNamespace
from aura.configure.ansible import AnsibleConfigurator
from aura.configure.base import ConfigTarget
from aura.controller.app import build_operator
from aura.controller.clients.gateway import probe_readyz
from aura.controller.settings import OperatorConfig

job = json.load(sys.stdin)
proxy = os.environ["AURA_TAILNET_PROXY"] if job["via_proxy"] else None

async def main():
    op = await build_operator(
        OperatorConfig(tailnet_proxy=proxy, configurator="ansible", health_timeout=5),
        SimpleNamespace(api=None),
    )
    try:
        probe = await probe_readyz(op.http, job["gateway"])
    finally:
        await op.http.aclose()
    playbooks = Path(tempfile.mkdtemp())
    (playbooks / "ok.yml").write_text(job["playbook"])
    configurator = AnsibleConfigurator(
        ansible_dir=playbooks, playbook="ok.yml", timeout_seconds=120,
        extra_env=op.configurator.extra_env,
    )
    result = await configurator.configure(ConfigTarget(**job["target"]))
    print(json.dumps({"uid": os.getuid(), "probe_ok": probe.ok, "probe": probe.detail,
                      "ansible_ok": result.ok, "ansible": result.message}))

asyncio.run(main())
"""


def run_in_operator(node: Node, pod: str, job: dict[str, Any]) -> dict[str, Any]:
    out = node.kubectl(
        "-n", SYSTEM_NS, "exec", "-i", pod, "-c", "operator", "--",
        "python", "-c", IN_POD, input=json.dumps(job),
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def test_the_operator_mints_the_sidecar_key_and_agents_run_with_probes_through_the_sidecar(
    with_sidecar: Node, host_sandbox: HostSandbox
) -> None:
    node = with_sidecar
    secret = node.get_json("-n", SYSTEM_NS, "get", "secret", "aura-operator-tailnet")
    assert set(secret["data"]) >= {"TS_AUTHKEY", "AURA_KEY_ID", "AURA_KEY_EXPIRES"}
    key_id = base64.b64decode(secret["data"]["AURA_KEY_ID"]).decode()
    keys = {k["id"]: k for k in host_sandbox.admin("/tailnet/keys")["keys"]}
    create = keys[key_id]["capabilities"]["devices"]["create"]
    assert create["tags"] == ["tag:aura-operator"] and create["reusable"] and create["ephemeral"]
    for pod in operator_pods(node):
        statuses = {c["name"]: c for c in pod["status"]["containerStatuses"]}
        assert statuses["tailscale"]["ready"] and statuses["operator"]["ready"], statuses
        assert statuses["tailscale"]["image"].endswith(tailscaled_image().split("/", 1)[1])
        version = node.kubectl(
            "-n", SYSTEM_NS, "exec", pod["metadata"]["name"], "-c", "tailscale", "--",
            "/tailscaled", "--version",
        )  # fmt: skip
        assert _TAILSCALE_VERSION in version, version
    figure("tailnet sidecar", f"tailscaled {_TAILSCALE_VERSION} (userspace, SOCKS5 + HTTP proxy)")
    # The sandbox answers the operator's host observations and gateway probes (which go
    # through the HTTP proxy) on its one port, as well as its cloud API calls (which do not):
    # counting the sidecar's own connections to that port shows the probes took the proxy.
    port = urlsplit(host_sandbox.admin_url).port
    assert port is not None
    counters = [
        PodRule(pod_netns(p["status"]["podIP"]), SIDECAR_UID, [port], reject=False)
        for p in operator_pods(node)
    ]
    namespace = f"ts-{os.urandom(4).hex()}"
    node.kubectl("create", "namespace", namespace)
    with contextlib.ExitStack() as stack:
        for counter in counters:
            stack.enter_context(counter)
        try:
            apply(node, [agent("through-sidecar", namespace)])
            wait_running(node, namespace, "through-sidecar")
            assert len(servers_in(host_sandbox, namespace)) == 1
            via_sidecar = sum(c.connections() for c in counters)
        finally:
            node.kubectl("delete", "namespace", namespace, "--wait=true", "--timeout=180s")
    assert via_sidecar > 0, "no probe went through the sidecar"
    figure("connections the sidecar carried for one Agent to Running", str(via_sidecar))


def test_gateway_probe_and_ansible_go_only_through_the_sidecar_proxy(
    with_sidecar: Node, gateway: Gateway, node_sshd: HostSshd, tmp_path: Path
) -> None:
    node = with_sidecar
    pod = operator_pods(node)[0]
    pod_ip = pod["status"]["podIP"]
    out_dir = tmp_path / "target"
    out_dir.mkdir()
    job = {
        "gateway": f"http://{NODE_IP}:{gateway.port}",
        "playbook": (REPO / "tests" / "ansible" / "playbooks" / "ok.yml").read_text(),
        "target": {
            "agent": "test/through-sidecar",
            "server_id": 1,
            "host": NODE_IP,
            "port": node_sshd.port,
            "user": node_sshd.user,
            "ssh_private_key": node_sshd.client_private_key,
            "ssh_host_public_key": node_sshd.host_public_key,
            "openclaw_version": "2026.3.1",
            "extra_vars": {
                "ansible_python_interpreter": "/usr/bin/python3",
                "out_dir": str(out_dir),
            },
        },
    }
    ports = [gateway.port, node_sshd.port]
    netns = pod_netns(pod_ip)
    with (
        PodRule(netns, OPERATOR_UID, ports, reject=True) as guard,
        PodRule(netns, SIDECAR_UID, ports, reject=False) as sidecar,
    ):
        result = run_in_operator(node, pod["metadata"]["name"], {**job, "via_proxy": True})
        assert result["uid"] == OPERATOR_UID
        assert result["probe_ok"], result
        assert result["ansible_ok"], result
        assert guard.connections() == 0, "the operator tried a direct connection"
        assert sidecar.connections() >= 2, "the sidecar did not carry both connections"
        # Both hosts were reached, from the Pod's address (the sidecar shares its network).
        assert gateway.clients and set(gateway.clients) == {pod_ip}, gateway.clients
        assert (out_dir / "ok.txt").exists()
        assert f"Connection from {pod_ip}" in node_sshd.log.read_text()

        # The guard catches a direct attempt: without the proxy both are made, and rejected.
        (out_dir / "ok.txt").unlink()
        direct = run_in_operator(node, pod["metadata"]["name"], {**job, "via_proxy": False})
        assert not direct["probe_ok"] and not direct["ansible_ok"], direct
        assert guard.connections() >= 2, "a direct attempt went unnoticed"
        assert not (out_dir / "ok.txt").exists()
