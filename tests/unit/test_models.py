"""The pydantic models: defaults, wire names, and the same rejections the CRD makes."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from aura.models import Agent, AgentSpec, DesiredState
from tests.agent_cases import BAD_SPECS, valid_spec


def test_empty_spec_gets_every_default() -> None:
    spec = AgentSpec.model_validate({})
    assert spec.desired_state is DesiredState.RUNNING
    assert (spec.server.type, spec.server.location, spec.server.image) == (
        "cx22",
        "nbg1",
        "ubuntu-24.04",
    )
    assert spec.runtime.gateway_port == 18789
    assert spec.tailscale.tags == ["tag:aura-agent"]
    assert spec.billing is None


def test_wire_names_are_camel_case_and_round_trip() -> None:
    spec = AgentSpec.model_validate(valid_spec())
    wire = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert wire["desiredState"] == "running"
    assert wire["runtime"]["openclawVersion"] == "2026.3.1"
    assert wire["billing"] == {"customerId": "cus_Q1w2e3", "subscriptionId": "sub_A1b2C3"}
    assert AgentSpec.model_validate(wire) == spec


def test_unknown_fields_are_rejected_with_their_name() -> None:
    with pytest.raises(ValidationError) as err:
        AgentSpec.model_validate({**valid_spec(), "replicas": 2})
    assert err.value.errors()[0]["loc"] == ("replicas",)


@pytest.mark.parametrize(("spec", "field"), BAD_SPECS)
def test_bad_spec_is_rejected_naming_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        AgentSpec.model_validate(spec)
    locations = [".".join(str(p) for p in e["loc"]) for e in err.value.errors()]
    expected = field.replace("[", ".").replace("]", "")
    assert any(loc.startswith(expected) for loc in locations), locations


def test_agent_parses_an_apiserver_object_and_ignores_foreign_status() -> None:
    agent = Agent.model_validate(
        {
            "apiVersion": "aura.dev/v1alpha1",
            "kind": "Agent",
            "metadata": {"name": "a", "namespace": "n", "uid": "u-1", "generation": 3},
            "spec": valid_spec(),
            "status": {"phase": "Running", "kopf": {"progress": {}}},
        }
    )
    assert agent.metadata.generation == 3
    assert agent.status.phase == "Running"
    assert "kopf" not in agent.to_wire()["status"]
