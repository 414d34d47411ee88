"""The committed CRD is exactly what the models generate, and it is structural."""

from __future__ import annotations

from typing import Any

import pytest

from aura import crd
from tests.kube import REPO


@pytest.mark.parametrize("kind", sorted(crd.KINDS))
def test_committed_crd_matches_the_models(kind: str) -> None:
    committed = (REPO / "crds" / crd.KINDS[kind][1]).read_text()
    assert committed == crd.render(kind), "crds/ is stale: run `make crds`"


def _walk(node: dict[str, Any], path: str = "") -> list[str]:
    """Paths that break Kubernetes' structural-schema rules."""
    problems = []
    if "$ref" in node or "anyOf" in node or "title" in node:
        problems.append(path)
    if "properties" in node and "additionalProperties" in node:
        problems.append(path)
    if "type" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        problems.append(path)
    for name, sub in node.get("properties", {}).items():
        problems += _walk(sub, f"{path}.{name}")
    if "items" in node:
        problems += _walk(node["items"], f"{path}[]")
    return problems


@pytest.mark.parametrize("kind", sorted(crd.KINDS))
def test_schema_is_structural(kind: str) -> None:
    schema = crd.KINDS[kind][0]()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _walk(schema) == []


def test_printer_columns_cover_what_users_look_at() -> None:
    names = [c["name"] for c in crd.PRINTER_COLUMNS if not c.get("priority")]
    assert names == [
        "Phase",
        "Desired",
        "Server type",
        "Location",
        "Public IP",
        "Tailnet IP",
        "Age",
    ]
