"""The project image, built by `docker build` from the repository's unmodified Dockerfile
(session fixture `image`), run the way the manifests run it: as uid 10001 with a read-only root
filesystem (only /tmp and the home directory writable, as the Deployments' emptyDirs)."""

from __future__ import annotations

import json
import subprocess
import tomllib

import pytest

from tests.cluster.conftest import docker_run
from tests.kube import REPO

# The session fixtures build the image and bring the node up inside the first test's setup:
# minutes on a cold machine, beyond the suite's default per-test timeout.
pytestmark = pytest.mark.timeout(3600)

VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def inspect(image: str) -> dict[str, object]:
    out = subprocess.run(
        ["docker", "image", "inspect", image], capture_output=True, text=True, check=True
    ).stdout
    config: dict[str, object] = json.loads(out)[0]["Config"]
    return config


def test_aura_version_runs_as_uid_10001_on_a_read_only_root(image: str) -> None:
    config = inspect(image)
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["aura"]
    proc = docker_run(image, "--version")
    assert proc.returncode == 0, proc.stderr
    assert VERSION in proc.stdout
    who = docker_run(
        image, "-c", "id -u; id -g; touch /probe 2>&1 || echo read-only", entrypoint="sh"
    )
    assert who.stdout.split()[:2] == ["10001", "10001"], who.stdout
    assert "read-only" in who.stdout.lower(), who.stdout


def test_both_components_start_their_cli(image: str) -> None:
    for component in ("operator", "bridge"):
        proc = docker_run(image, component, "--help")
        assert proc.returncode == 0, proc.stderr
        assert "Usage:" in proc.stdout


def test_no_compiler_and_no_pip_cache_in_the_image(image: str) -> None:
    script = (
        "for c in gcc cc g++ clang make; do command -v $c; done;"
        " find / -xdev \\( -path /proc -o -path /sys \\) -prune -o"
        " \\( -type d -path '*/.cache/pip' -o -type d -name 'pip-*' -path '/tmp/*' \\) -print"
    )
    # As root: the whole filesystem is searched, root's home included.
    proc = docker_run(image, "-c", script, entrypoint="sh", as_root=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"found in the image:\n{proc.stdout}"
    # The same check finds what it looks for: a pip cache created on purpose is reported.
    planted = docker_run(
        image, "-c", "mkdir -p /root/.cache/pip; " + script, entrypoint="sh", as_root=True
    )
    assert planted.stdout.strip() == "/root/.cache/pip", planted.stdout


def test_the_playbook_is_in_the_image_and_passes_a_syntax_check(image: str) -> None:
    listing = docker_run(image, "-c", "ls $AURA_ANSIBLE_DIR", entrypoint="sh")
    assert "site.yml" in listing.stdout.split(), listing.stdout + listing.stderr
    proc = docker_run(
        image,
        "--syntax-check",
        "-i",
        "localhost,",
        "/opt/aura/ansible/site.yml",
        entrypoint="ansible-playbook",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "playbook: /opt/aura/ansible/site.yml" in proc.stdout
    # A broken playbook fails the same check inside the image.
    broken = docker_run(
        image,
        "-c",
        "printf -- '- hosts: all\\n  tasks:\\n  - nosuchmodule: {}\\n' > /tmp/b.yml"
        " && ansible-playbook --syntax-check -i localhost, /tmp/b.yml",
        entrypoint="sh",
    )
    assert broken.returncode != 0


def test_the_ssh_client_ansible_runs_is_present(image: str) -> None:
    proc = docker_run(image, "-c", "ssh -V 2>&1; ansible-runner --version", entrypoint="sh")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OpenSSH" in proc.stdout
