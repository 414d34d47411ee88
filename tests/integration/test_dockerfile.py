"""The Dockerfile and .dockerignore, read as text: there is no Docker engine where the suite
runs, so the image is never built here. These tests pin the facts the manifests rely on
(numeric non-root user, `aura` entrypoint, ssh client, Ansible, the playbook's location) and
keep secrets out of the build context."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from dataclasses import dataclass

import pytest
import yaml

from tests.kube import REPO

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


@dataclass(frozen=True)
class Instruction:
    stage: int
    keyword: str
    args: str


def parse(text: str) -> list[Instruction]:
    """Instructions with line continuations joined and comments dropped, per stage."""
    instructions: list[Instruction] = []
    stage = -1
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, args = current.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(stage, keyword, " ".join(args.split())))
        current = ""
    assert not current, "a continued instruction never ends"
    return instructions


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse(DOCKERFILE.read_text())


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def test_parser_joins_continuations_and_counts_stages() -> None:
    parsed = parse("FROM a AS b\nRUN x \\\n  # note\n  && y\nFROM c\nUSER 1\n")
    assert parsed == [
        Instruction(0, "FROM", "a AS b"),
        Instruction(0, "RUN", "x && y"),
        Instruction(1, "FROM", "c"),
        Instruction(1, "USER", "1"),
    ]


def test_is_multi_stage_on_slim_python_311(instructions: list[Instruction]) -> None:
    froms = [i.args for i in instructions if i.keyword == "FROM"]
    assert len(froms) >= 2
    assert froms[0].endswith("AS builder")
    (base,) = [i.args for i in instructions if i.keyword == "ARG" and "PYTHON_IMAGE=" in i.args]
    assert base.startswith("PYTHON_IMAGE=python:3.11-slim")
    assert all(f.startswith("${PYTHON_IMAGE}") for f in froms)
    # The runtime stage takes only built artefacts from the builder, never its toolchain.
    copies = [i.args for i in final_stage(instructions) if i.keyword == "COPY"]
    from_builder = [c for c in copies if c.startswith("--from=")]
    assert from_builder and all(c.startswith("--from=builder /opt/aura/") for c in from_builder)


def test_runs_as_numeric_non_root_user(instructions: list[Instruction]) -> None:
    users = [i.args for i in final_stage(instructions) if i.keyword == "USER"]
    assert users, "the final stage sets USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0, "numeric, so the kubelet can verify runAsNonRoot"
    assert not gid or (gid.isdigit() and int(gid) > 0)
    # The manifests run the pods as the same uid.
    for name in ("operator.yaml", "bridge.yaml"):
        assert f"runAsUser: {uid}" in (REPO / "manifests" / name).read_text()


def test_entrypoint_is_aura(instructions: list[Instruction]) -> None:
    (entrypoint,) = [i.args for i in final_stage(instructions) if i.keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["aura"], "exec form, so signals reach aura directly"
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert "aura" in scripts


def test_installs_the_ssh_client_in_the_runtime_stage(instructions: list[Instruction]) -> None:
    runs = " ".join(i.args for i in final_stage(instructions) if i.keyword == "RUN")
    assert re.search(r"apt-get install [^&]*\bopenssh-client\b", runs)
    assert "--no-install-recommends" in runs
    assert "rm -rf /var/lib/apt/lists/*" in runs


def test_installs_aura_with_ansible(instructions: list[Instruction]) -> None:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~ \[]", d, maxsplit=1)[0] for d in deps}
    assert {"ansible-core", "ansible-runner"} <= names
    builder = [i for i in instructions if i.stage == 0]
    runs = " ".join(i.args for i in builder if i.keyword == "RUN")
    assert '["project"]["dependencies"]' in runs, "dependencies come from pyproject.toml"
    assert "pip install --no-deps ." in runs
    assert "-e " not in runs and "--editable" not in runs
    copies = [i.args for i in final_stage(instructions) if i.keyword == "COPY"]
    assert "--from=builder /opt/aura/venv /opt/aura/venv" in copies


def test_ships_the_playbook_where_the_operator_looks(instructions: list[Instruction]) -> None:
    runtime = final_stage(instructions)
    assert "ansible/ /opt/aura/ansible/" in [i.args for i in runtime if i.keyword == "COPY"]
    env = " ".join(i.args for i in runtime if i.keyword == "ENV")
    assert "AURA_ANSIBLE_DIR=/opt/aura/ansible" in env
    assert "PATH=/opt/aura/venv/bin:$PATH" in env
    assert (REPO / "ansible").is_dir()


def test_exposes_the_ports_the_manifests_probe(instructions: list[Instruction]) -> None:
    (expose,) = [i.args for i in final_stage(instructions) if i.keyword == "EXPOSE"]
    assert set(expose.split()) == {"8080", "9090"}


SECRETISH = re.compile(r"(TOKEN|SECRET|PASSWORD|API_KEY|PRIVATE)", re.IGNORECASE)


def test_bakes_in_no_secret(instructions: list[Instruction]) -> None:
    for instruction in instructions:
        if instruction.keyword in {"ENV", "ARG", "LABEL"}:
            assert not SECRETISH.search(instruction.args), instruction
    text = DOCKERFILE.read_text()
    assert "whsec_" not in text and "sk_live" not in text and "tskey-" not in text


def context_includes(path: str) -> bool:
    """Whether `path` ends up in the build context under .dockerignore (last match wins)."""
    included = True
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        matched = any(fnmatch.fnmatchcase(p, pattern) for p in prefixes)
        if pattern.startswith("**/"):
            matched = matched or any(fnmatch.fnmatchcase(p, pattern[3:]) for p in parts)
        if matched:
            included = negate
    return included


@pytest.mark.parametrize(
    ("path", "included"),
    [
        ("pyproject.toml", True),
        ("README.md", True),
        ("operator/aura/cli.py", True),
        ("ansible/site.yml", True),
        (".envtest/pki/admin.key", False),
        (".git/config", False),
        (".venv/bin/python", False),
        ("operator/aura/__pycache__/cli.cpython-311.pyc", False),
        ("operator/aura.egg-info/PKG-INFO", False),
        ("tests/conftest.py", False),
        ("manifests/secrets.yaml", False),
        ("operator.env", False),
        (".env", False),
    ],
)
def test_build_context_is_an_allow_list(path: str, included: bool) -> None:
    assert context_includes(path) is included


def test_every_copied_source_is_in_the_build_context(instructions: list[Instruction]) -> None:
    for instruction in instructions:
        if instruction.keyword != "COPY" or instruction.args.startswith("--from="):
            continue
        *sources, _ = instruction.args.split()
        for source in sources:
            assert (REPO / source).exists(), source
            assert context_includes(source.rstrip("/")), source


def test_kind_up_builds_the_image_the_manifests_deploy() -> None:
    kustomization = yaml.safe_load((REPO / "manifests" / "kustomization.yaml").read_text())
    (image,) = kustomization["images"]
    default = f"{image['name']}:{image['newTag']}"
    assert default == "ghcr.io/aura-dev/aura:0.1.0"
    assert f'IMAGE="${{AURA_IMAGE:-{default}}}"' in (REPO / "hack" / "kind-up.sh").read_text()
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert image["newTag"] == version, "the image tag follows the package version"
