"""hack/envtest.sh: a second, private control plane proves up/env/down behave as documented."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.kube import ENVTEST, Cluster

pytestmark = pytest.mark.integration


def envtest(run_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AURA_ENVTEST_DIR": str(run_dir)}
    return subprocess.run(
        ["bash", str(ENVTEST), *args], env=env, capture_output=True, text=True, timeout=300
    )


def pids(run_dir: Path) -> set[int]:
    return {int((run_dir / f"{c}.pid").read_text().split()[0]) for c in ("etcd", "kube-apiserver")}


def test_up_twice_then_down_stops_exactly_what_it_started(tmp_path: Path, cluster: Cluster) -> None:
    run_dir = tmp_path / "envtest"
    first = envtest(run_dir, "up")
    assert first.returncode == 0, first.stderr
    kubeconfig = run_dir / "kubeconfig"
    assert first.stdout.strip() == f"export KUBECONFIG={kubeconfig}"
    started = pids(run_dir)

    try:
        again = envtest(run_dir, "up")
        assert again.returncode == 0, again.stderr
        assert "already running" in again.stderr
        assert pids(run_dir) == started

        assert envtest(run_dir, "env").stdout.strip() == f"export KUBECONFIG={kubeconfig}"
        ready = subprocess.run(
            ["kubectl", "--kubeconfig", str(kubeconfig), "get", "--raw", "/readyz"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert ready.stdout.strip() == "ok"
    finally:
        down = envtest(run_dir, "down")
    assert down.returncode == 0, down.stderr
    assert all(not Path(f"/proc/{pid}").exists() for pid in started)
    assert not kubeconfig.exists()
    assert envtest(run_dir, "status").returncode != 0
    # The shared control plane of the test session is untouched.
    assert subprocess.run(["bash", str(ENVTEST), "status"], capture_output=True).returncode == 0
