"""The spec validator itself: it must reject what the spec forbids, or every "validated"
response in the conformance tests would mean nothing."""

from __future__ import annotations

import pytest

from aura_sandbox.harness import Sandbox
from tests.sandbox.hetzner_support import create
from tests.sandbox.openapi import OpenApiValidator, SpecMismatch, hetzner_spec, tailscale_spec

ACTION = {
    "id": 1,
    "command": "start_server",
    "status": "running",
    "progress": 0,
    "started": "2026-01-01T00:00:00+00:00",
    "finished": None,
    "resources": [{"id": 2, "type": "server"}],
    "error": None,
}


def test_path_templates_prefer_literal_segments() -> None:
    v = OpenApiValidator(hetzner_spec())
    assert v.template_for("/v1/servers/actions") == "/servers/actions"
    assert v.template_for("/v1/servers/7") == "/servers/{id}"
    assert v.template_for("/v1/servers/7/actions/poweron") == "/servers/{id}/actions/poweron"
    assert v.template_for("/v2/servers") is None


@pytest.mark.parametrize(
    "broken",
    [
        {**ACTION, "id": "1"},
        {**ACTION, "status": "pending"},
        {k: v for k, v in ACTION.items() if k != "progress"},
        {**ACTION, "resources": [{"id": 2}]},
    ],
)
def test_rejects_bodies_the_spec_forbids(broken: dict[str, object]) -> None:
    v = OpenApiValidator(hetzner_spec())
    with pytest.raises(SpecMismatch):
        v.validate("GET", "/v1/actions/1", 200, {"action": broken})
    assert len(v.failures) == 1


def test_accepts_nullable_and_error_envelopes() -> None:
    v = OpenApiValidator(hetzner_spec())
    assert v.validate("GET", "/v1/actions/1", 200, {"action": ACTION})
    error = {"error": {"code": "not_found", "message": "action not found", "details": None}}
    assert v.validate("GET", "/v1/actions/1", 404, error)
    with pytest.raises(SpecMismatch):
        v.validate("GET", "/v1/actions/1", 404, {"message": "not found"})
    assert not v.validate("GET", "/v1/volcanoes", 200, {})


def test_works_with_the_tailscale_yaml_spec() -> None:
    v = OpenApiValidator(tailscale_spec())
    assert v.base_path == "/api/v2"
    assert v.validate("GET", "/api/v2/tailnet/-/keys", 200, {"keys": [{"id": "k1"}]})
    assert v.validate("GET", "/api/v2/tailnet/-/keys", 404, {"message": "not found"})
    with pytest.raises(SpecMismatch):
        v.validate("GET", "/api/v2/tailnet/-/keys", 200, {"keys": "none"})


def test_a_live_sandbox_response_is_checked(sandbox: Sandbox) -> None:
    v = OpenApiValidator(hetzner_spec())
    client = sandbox.ready.hcloud()
    client._client._session.hooks["response"].append(v.requests_hook)
    create(client, "checked", wait=False)
    assert v.validated == 1
    assert v.per_operation["POST /servers 201"] == 1
