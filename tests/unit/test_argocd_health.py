"""The Argo CD health check for Agents, run by a real Lua interpreter (lupa) as Argo CD runs
it: the Agent object is the global `obj`, and the script returns `{status, message}`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import LuaRuntime

ARGOCD = Path(__file__).resolve().parents[2] / "manifests" / "argocd"
SCRIPT = ARGOCD / "resource_customizations" / "aura.dev" / "Agent" / "health.lua"


def health(agent: dict[str, Any]) -> tuple[str, str]:
    lua = LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = _to_lua(lua, agent)
    result = lua.execute(SCRIPT.read_text())
    return str(result["status"]), str(result["message"])


def _to_lua(lua: LuaRuntime, value: Any) -> Any:
    if isinstance(value, dict):
        return lua.table_from({k: _to_lua(lua, v) for k, v in value.items()})
    if isinstance(value, list):
        return lua.table_from([_to_lua(lua, v) for v in value])
    return value


def agent(
    phase: str | None,
    desired: str = "running",
    generation: int = 3,
    observed: int = 3,
    ready: str = "",
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "aura.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {"name": "a", "namespace": "n", "generation": generation},
        "spec": {"desiredState": desired},
    }
    if phase is not None:
        conditions = [{"type": "Ready", "status": "False", "message": ready}] if ready else []
        body["status"] = {"phase": phase, "observedGeneration": observed, "conditions": conditions}
    return body


@pytest.mark.parametrize(
    ("obj", "status"),
    [
        (agent("Running"), "Healthy"),
        (agent("Running", generation=4, observed=3), "Progressing"),
        (agent(None), "Progressing"),
        *[
            (agent(p), "Progressing")
            for p in (
                "Queued",
                "Provisioning",
                "Configuring",
                "Networking",
                "Starting",
                "Stopping",
                "Deleting",
                "Checkpointing",
                "Restoring",
                "Hibernating",
                "Waking",
            )
        ],
        (agent("Degraded", ready="gateway probe failed"), "Degraded"),
        (agent("Failed", ready="server never booted"), "Degraded"),
        (agent("Stopped", desired="stopped"), "Suspended"),
        (agent("Suspended", desired="suspended"), "Suspended"),
        (agent("Hibernated", desired="hibernated"), "Suspended"),
        (agent("Hibernated", desired="suspended"), "Suspended"),
        (agent("Stopped", desired="running"), "Progressing"),
        (agent("Hibernated", desired="running"), "Progressing"),
        (agent("Deleted", desired="deleted"), "Missing"),
        (agent("Exploded"), "Unknown"),
    ],
    ids=lambda v: v if isinstance(v, str) else v.get("status", {}).get("phase", "none"),
)
def test_each_phase_has_its_health(obj: dict[str, Any], status: str) -> None:
    assert health(obj)[0] == status


def test_the_message_names_the_phase_and_the_reason() -> None:
    assert health(agent("Failed", ready="server never booted")) == (
        "Degraded",
        "Failed: server never booted",
    )
    assert health(agent("Provisioning")) == ("Progressing", "Provisioning")
    assert "generation 4" in health(agent("Running", generation=4, observed=3))[1]


def test_the_configmap_patch_carries_the_same_script() -> None:
    patch = yaml.safe_load((ARGOCD / "argocd-cm-patch.yaml").read_text())
    inline = patch["data"]["resource.customizations.health.aura.dev_Agent"]
    assert inline.strip() == SCRIPT.read_text().strip()
