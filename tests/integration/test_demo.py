"""`aura demo`, the main job, end to end on the real apiserver, and its clean-up on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.kube import REPO, Cluster

pytestmark = pytest.mark.integration

AURA = str(REPO / ".venv" / "bin" / "aura")


def children_of(pid: int) -> set[int]:
    found = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines())
        except (OSError, ValueError):
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.add(int(status.parent.name))
    return found


def test_demo_walks_the_whole_lifecycle(cluster: Cluster, namespace: str) -> None:
    result = subprocess.run(
        [AURA, "demo", "--namespace", namespace, "--step-timeout", "120"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "KUBECONFIG": cluster.kubeconfig},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for phase in ("Provisioning", "Configuring", "Networking", "Running", "Suspended", "Deleted"):
        assert f"phase {phase}" in out
    summary = out[out.index("STEP") :].splitlines()
    assert [line.split()[-1] for line in summary[1:]] == ["ok"] * 4
    agents = cluster.kubectl("get", "agents", "-n", namespace, "-o", "name")
    assert agents.strip().startswith("agent.aura.dev/acme-")  # the record stays


def test_demo_cleans_up_on_ctrl_c(cluster: Cluster, namespace: str) -> None:
    proc = subprocess.Popen(
        [AURA, "demo", "--namespace", namespace],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "KUBECONFIG": cluster.kubeconfig},
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "▶ checkout completed" in line:
            break
    children = children_of(proc.pid)
    assert len(children) == 3, seen  # sandbox, bridge, operator
    proc.send_signal(signal.SIGINT)
    rest = proc.stdout.read()
    assert proc.wait(timeout=60) == 1
    assert "interrupted: cleaning up" in rest
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in children):
        time.sleep(0.1)
    assert not [p for p in children if Path(f"/proc/{p}").exists()]
