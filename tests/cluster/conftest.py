"""Fixtures for the deployment tests: the project image built from the unmodified Dockerfile,
and a real single-node Kubernetes cluster (hack/cluster.sh) that runs it as Pods.

Both are session-wide: the image is built once (`hack/cluster.sh image`, the legacy builder,
`PYTHON_IMAGE` pointing at the local Debian-based stand-in), the node is brought up once and
torn down at the end when this session started it. The simulated cloud (`aura sandbox`) runs
on the host, bound to the node's private address, so Pods reach it through the Pod network
and nothing outside this machine can. Figures (build and bring-up times, image size, rollout
and takeover times) are printed in the terminal summary.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import config

from tests.kube import REPO, Cluster

CLUSTER_SH = REPO / "hack" / "cluster.sh"
IMAGE = "ghcr.io/aura-dev/aura:0.1.0"
NODE_IP = "10.89.0.1"
FIGURES: dict[str, str] = {}


def figure(name: str, value: str) -> None:
    """Record a figure for the terminal summary (and print it, for `-s` runs)."""
    FIGURES[name] = value
    print(f"figure: {name}: {value}")


def cluster_sh(*args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    """Run hack/cluster.sh; its progress lines go to .cluster/pytest-<command>.log."""
    proc = subprocess.run(
        ["bash", str(CLUSTER_SH), *args], capture_output=True, text=True, timeout=timeout
    )
    log_dir = REPO / ".cluster"
    log_dir.mkdir(exist_ok=True)
    (log_dir / f"pytest-{args[0]}.log").write_text(proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"hack/cluster.sh {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="session")
def image() -> str:
    """The project image, built by `docker build` from the repository's own Dockerfile."""
    started = time.monotonic()
    cluster_sh("image", IMAGE)
    figure(
        "image build (docker build, layers cached if warm)", f"{time.monotonic() - started:.0f}s"
    )
    size = int(
        subprocess.run(
            ["docker", "image", "inspect", "-f", "{{.Size}}", IMAGE],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    figure("image size", f"{size / 1e6:.0f} MB")
    return IMAGE


def docker_run(
    image: str, *args: str, entrypoint: str | None = None, as_root: bool = False
) -> subprocess.CompletedProcess[str]:
    """`docker run` with no network; as the image's own user with a read-only root filesystem
    (writable /tmp and home, like the Deployments' emptyDirs), or `as_root` to inspect it."""
    command = ["docker", "run", "--rm", "--network", "none"]
    if as_root:
        command += ["--user", "0"]
    else:
        command += ["--read-only", "--tmpfs", "/tmp", "--tmpfs", "/home/aura:uid=10001,gid=10001"]
    if entrypoint:
        command += ["--entrypoint", entrypoint]
    return subprocess.run(
        [*command, image, *args], capture_output=True, text=True, timeout=300, check=False
    )


@dataclass(frozen=True)
class Node(Cluster):
    """The real node's cluster: a `Cluster` whose kubectl talks to hack/cluster.sh's apiserver."""

    def get_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json"))


@pytest.fixture(scope="session")
def node(image: str) -> Iterator[Node]:
    """A running single node with the project image in its containerd."""
    started_here = (
        subprocess.run(["bash", str(CLUSTER_SH), "status"], capture_output=True).returncode != 0
    )
    started = time.monotonic()
    proc = cluster_sh("up")
    if started_here:
        figure(
            "node bring-up, binaries cached (up to CoreDNS ready)",
            f"{time.monotonic() - started:.0f}s",
        )
        for line in proc.stderr.splitlines():
            # "cluster: kcm, scheduler, kube-proxy, kubelet: Node Ready    2s (total   30s)"
            step = re.match(r"cluster: (.+?)\s+(\d+)s \(total\s+(\d+)s\)", line)
            if step:
                figure(f"  up: {step.group(1)}", f"{step.group(2)}s")
    started = time.monotonic()
    cluster_sh("load", image)
    figure("image import into the node's containerd", f"{time.monotonic() - started:.0f}s")
    kubeconfig = proc.stdout.strip().splitlines()[-1].removeprefix("export KUBECONFIG=")
    api = config.new_client_from_config(config_file=kubeconfig)
    yield Node(kubeconfig=kubeconfig, api=api, started_here=started_here)
    api.close()
    if started_here and os.environ.get("AURA_TEST_KEEP_CLUSTER") != "1":
        started = time.monotonic()
        cluster_sh("down")
        figure("node teardown", f"{time.monotonic() - started:.0f}s")
        assert leftovers() == [], "hack/cluster.sh down left state behind"


def leftovers() -> list[str]:
    """Host state the node creates that must be gone after `down`."""
    found = []
    run_dir = str(REPO / ".cluster") + "/"
    with open("/proc/self/mounts") as mounts:
        found += [line.split()[1] for line in mounts if line.split()[1].startswith(run_dir)]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    found += [w.rstrip(":@") for w in links.split() if w.startswith(("aura-host0", "aura-cni0"))]
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found += [line.split()[0] for line in netns.splitlines() if line.startswith("cni-")]
    for tool in ("iptables-save", "ip6tables-save"):
        rules = subprocess.run([tool], capture_output=True, text=True).stdout
        found += [
            f"{tool}: {line}"
            for line in rules.splitlines()
            if re.match(r"^(:|-A \S+ .*-j )(KUBE-|CNI-|AURA-)", line)
        ]
    return found


@dataclass
class HostSandbox:
    """`aura sandbox` on the node's address: what its ready line says, plus the process."""

    info: dict[str, Any]
    process: subprocess.Popen[str]

    @property
    def admin_url(self) -> str:
        return str(self.info["admin_url"])

    def admin(self, path: str) -> Any:
        import httpx

        response = httpx.get(f"{self.admin_url}{path}", timeout=10)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="session")
def host_sandbox(node: Node, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostSandbox]:
    """The simulated Hetzner/Tailscale APIs, reachable from Pods at 10.89.0.1 (a host-only
    address on the node's own bridge), time-scaled so a server boots in seconds."""
    log = (tmp_path_factory.mktemp("sandbox") / "sandbox.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aura",
            "sandbox",
            "--host",
            NODE_IP,
            "--port",
            "0",
            "--time-scale",
            "0.02",
        ],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait(10)
        raise RuntimeError(f"aura sandbox exited {process.returncode}; see {log.name}")
    yield HostSandbox(info=json.loads(line), process=process)
    process.terminate()
    process.wait(30)
    log.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("deployment figures (tests/cluster)")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name:<58} {value}")
