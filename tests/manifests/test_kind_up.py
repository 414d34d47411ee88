"""hack/kind-up.sh: it needs Docker and kind, so here its syntax, its refusals, and a run
against stand-in docker/kind/kubectl that records what it would deploy."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.kube import REPO, Cluster
from tests.manifests.support import (
    by_kind,
    containers,
)

pytestmark = pytest.mark.integration


# -- hack/kind-up.sh (needs Docker, so here only its refusals and syntax) -----------------


@pytest.fixture
def bare_path(tmp_path: Path) -> Path:
    """A PATH directory with the basics but neither docker nor kind."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "env", "dirname", "cat", "grep", "mktemp", "rm", "kubectl"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    return bin_dir


def run_kind_up(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [shutil.which("bash") or "bash", str(REPO / "hack" / "kind-up.sh")],
        env={"PATH": str(path), "HOME": os.environ.get("HOME", "/tmp")},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_kind_up_is_valid_bash() -> None:
    proc = subprocess.run(["bash", "-n", str(REPO / "hack" / "kind-up.sh")], capture_output=True)
    assert proc.returncode == 0, proc.stderr


def test_kind_up_refuses_clearly_without_docker(bare_path: Path) -> None:
    proc = run_kind_up(bare_path)
    assert proc.returncode != 0
    assert "docker" in proc.stderr and "not found" in proc.stderr, proc.stderr


def test_kind_up_refuses_clearly_without_kind(bare_path: Path) -> None:
    fake = bare_path / "docker"
    fake.write_text("#!/bin/sh\nexit 0\n")  # a docker whose engine answers
    fake.chmod(0o755)
    proc = run_kind_up(bare_path)
    assert proc.returncode != 0
    assert "kind" in proc.stderr and "not found" in proc.stderr, proc.stderr


def test_kind_up_refuses_clearly_without_a_docker_engine(bare_path: Path) -> None:
    for tool in ("docker", "kind"):
        fake = bare_path / tool
        fake.write_text("#!/bin/sh\nexit 1\n")  # installed, but the engine does not answer
        fake.chmod(0o755)
    proc = run_kind_up(bare_path)
    assert proc.returncode != 0
    assert "Docker engine" in proc.stderr, proc.stderr


FAKE_DOCKER = """#!/bin/sh
echo "docker $*" >> "$CALLS"
case "$1" in image) echo "sha256:$(date +%N)";; esac
"""
FAKE_KIND = """#!/bin/sh
echo "kind $*" >> "$CALLS"
case "$1 $2" in "get clusters") echo aura;; esac
"""
# kubectl that drops `--context` (the kind cluster) and sends everything to the test
# cluster, applying only with --dry-run=server.
FAKE_KUBECTL = """#!/usr/bin/env bash
echo "kubectl $*" >> "$CALLS"
args=()
while (($#)); do
  if [[ $1 == --context ]]; then shift 2; continue; fi
  args+=("$1"); shift
done
case "${args[0]}" in
  apply) exec "$REAL_KUBECTL" --kubeconfig "$TEST_KUBECONFIG" "${args[@]}" \\
           --dry-run=server -o yaml ;;
  *) exit 0 ;;
esac
"""


def test_kind_up_deploys_the_built_image_with_the_given_secrets(
    rbac_installed: Cluster, bare_path: Path, tmp_path: Path
) -> None:
    """The whole script with docker and kind faked and kubectl aimed at the test cluster."""
    for name, text in (("docker", FAKE_DOCKER), ("kind", FAKE_KIND), ("kubectl", FAKE_KUBECTL)):
        (bare_path / name).unlink(missing_ok=True)
        (bare_path / name).write_text(text)
        (bare_path / name).chmod(0o755)
    for tool in ("sh", "date", "cp", "ln"):
        if (found := shutil.which(tool)) and not (bare_path / tool).exists():
            (bare_path / tool).symlink_to(found)
    env_file = tmp_path / "bridge.env"
    env_file.write_text("STRIPE_WEBHOOK_SECRET=whsec_real\nAURA_API_TOKENS=real-token\n")
    calls = tmp_path / "calls"
    proc = subprocess.run(
        ["bash", str(REPO / "hack" / "kind-up.sh")],
        env={
            "PATH": str(bare_path),
            "HOME": str(tmp_path),
            "CALLS": str(calls),
            "REAL_KUBECTL": shutil.which("kubectl") or "kubectl",
            "TEST_KUBECONFIG": rbac_installed.kubeconfig,
            "AURA_IMAGE": "localhost/aura:dev",
            "AURA_BRIDGE_ENV_FILE": str(env_file),
        },
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    log = calls.read_text()
    assert "docker build -t localhost/aura:dev" in log
    assert "kind load docker-image localhost/aura:dev --name aura" in log
    assert "kind create cluster" not in log, "the cluster exists: idempotent"
    assert "rollout restart" in log, "a rebuilt image under the same tag restarts the pods"
    assert "rollout status deployment/aura-operator" in log
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    applied = [item for d in docs for item in (d["items"] if d["kind"] == "List" else [d])]
    deployments = by_kind(applied, "Deployment")
    assert {c["image"] for d in deployments.values() for c in containers(d)} == {
        "localhost/aura:dev"
    }
    secret = by_kind(applied, "Secret")["aura-bridge-secrets"]
    assert set(secret["data"]) == {"STRIPE_WEBHOOK_SECRET", "AURA_API_TOKENS"}
    placeholders = by_kind(applied, "Secret")["aura-operator-credentials"]
    assert "replace-me" in str(placeholders)
