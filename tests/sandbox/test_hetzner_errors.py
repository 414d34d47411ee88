"""Conformance: auth, rate limiting and injected faults, including hcloud's own retries."""

from __future__ import annotations

import time

import hcloud
import pytest
import requests
from hcloud import APIException

from aura_sandbox.harness import Sandbox
from tests.sandbox.conftest import TIME_SCALE, Http, validated_client
from tests.sandbox.hetzner_support import create
from tests.sandbox.openapi import OpenApiValidator


@pytest.mark.parametrize(
    ("token", "message"),
    [("", "token is required"), ("wrong", "the token you have provided is invalid")],
)
def test_bad_token_is_401(
    sandbox: Sandbox, validator: OpenApiValidator, token: str, message: str
) -> None:
    client = hcloud.Client(token=token, api_endpoint=sandbox.ready.hetzner_url)
    client._client._session.hooks["response"].append(validator.requests_hook)
    if not token:
        client._client._headers = {
            k: v for k, v in client._client._headers.items() if k != "Authorization"
        }
    with pytest.raises(APIException) as exc:
        client.servers.get_all()
    assert (exc.value.code, exc.value.message) == ("unauthorized", message)
    assert exc.value.correlation_id


def test_readonly_token(sandbox: Sandbox, validator: OpenApiValidator) -> None:
    token = sandbox.config.hetzner_readonly_token
    client = hcloud.Client(token=token, api_endpoint=sandbox.ready.hetzner_url)
    client._client._session.hooks["response"].append(validator.requests_hook)
    assert client.servers.get_all() == []
    with pytest.raises(APIException) as exc:
        create(client, "ro", wait=False)
    assert exc.value.code == "token_readonly"


def test_unknown_route_is_404_before_auth(sandbox: Sandbox) -> None:
    response = requests.get(sandbox.ready.hetzner_url + "/volcanoes", timeout=5)
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "not_found",
        "message": "api route not found",
        "details": None,
    }


def test_rate_limit_headers_and_429(validator: OpenApiValidator) -> None:
    with Sandbox(
        time_scale=TIME_SCALE, rate_limit_capacity=3, rate_limit_refill_per_second=0.5
    ) as sb:
        http = Http(sb, validator)
        first = http.get("/servers")
        assert first.headers["RateLimit-Limit"] == "3"
        assert first.headers["RateLimit-Remaining"] == "2"
        assert int(first.headers["RateLimit-Reset"]) >= int(time.time())
        http.get("/servers")
        http.get("/servers")
        limited = http.get("/servers")
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limit_exceeded"
        assert limited.headers["RateLimit-Remaining"] == "0"
        assert "X-Correlation-Id" in limited.headers


def test_hcloud_retries_through_a_real_rate_limit(validator: OpenApiValidator) -> None:
    with Sandbox(
        time_scale=TIME_SCALE, rate_limit_capacity=2, rate_limit_refill_per_second=20
    ) as sb:
        client = validated_client(sb, validator)
        client._client._retry_interval_func = lambda retries: 0.06
        for _ in range(6):
            client.server_types.get_by_name("cx22")
        assert sb.request_counts()["GET /v1/server_types"] > 6


@pytest.mark.parametrize(
    ("kind", "spec"),
    [
        ("rate_limit", {}),
        ("http_error", {"status": 409, "code": "conflict"}),
        ("http_error", {"status": 502, "code": "bad_gateway"}),
        ("http_error", {"status": 504, "code": "timeout"}),
    ],
)
def test_hcloud_retries_what_it_should(
    client: hcloud.Client, sandbox: Sandbox, kind: str, spec: dict[str, object]
) -> None:
    sandbox.inject(kind, count=3, method="POST", path="^/v1/servers$", **spec)
    server = create(client, "retried", wait=False).server
    assert server.name == "retried"
    assert sandbox.request_counts()["POST /v1/servers"] == 4


def test_hcloud_gives_up_after_five_retries(client: hcloud.Client, sandbox: Sandbox) -> None:
    sandbox.inject("rate_limit", count=10, path="^/v1/servers$")
    with pytest.raises(APIException) as exc:
        client.servers.get_all()
    assert exc.value.code == "rate_limit_exceeded"
    assert sandbox.request_counts()["GET /v1/servers"] == 6
    assert exc.value.correlation_id


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        ({"kind": "locked"}, "locked"),
        ({"kind": "http_error", "status": 503}, "unavailable"),
        ({"kind": "http_error", "status": 500}, "server_error"),
        (
            {"kind": "http_error", "status": 412, "code": "resource_unavailable"},
            "resource_unavailable",
        ),
        (
            {"kind": "http_error", "status": 403, "code": "resource_limit_exceeded"},
            "resource_limit_exceeded",
        ),
        ({"kind": "http_error", "status": 422, "code": "placement_error"}, "placement_error"),
    ],
)
def test_hcloud_does_not_retry_the_rest(
    client: hcloud.Client, sandbox: Sandbox, spec: dict[str, object], code: str
) -> None:
    kind = str(spec.pop("kind"))
    sandbox.inject(kind, method="POST", **spec)
    with pytest.raises(APIException) as exc:
        create(client, "once", wait=False)
    assert exc.value.code == code
    assert sandbox.request_counts()["POST /v1/servers"] == 1
    create(client, "once", wait=False)


def test_502_without_envelope_is_retried(client: hcloud.Client, sandbox: Sandbox) -> None:
    # A proxy's bare 502 (no JSON error): hcloud keys on the HTTP status instead.
    sandbox.inject("http_error", status=502, code="bad_gateway", count=2, path="/server_types")
    assert client.server_types.get_by_name("cx32").cores == 4


def test_timeout_fault_and_client_timeout(sandbox: Sandbox, validator: OpenApiValidator) -> None:
    client = validated_client(sandbox, validator, timeout=0.3)
    sandbox.inject("timeout", delay=1.0, path="^/v1/locations$")
    assert len(client.locations.get_all()) == 6
    assert sandbox.request_counts()["GET /v1/locations"] == 2


def test_timeout_fault_drops_the_connection(sandbox: Sandbox, validator: OpenApiValidator) -> None:
    client = validated_client(sandbox, validator)
    sandbox.inject("timeout", delay=0.1, path="^/v1/locations$")
    with pytest.raises(requests.ConnectionError):
        client.locations.get_all()


def test_latency_fault(client: hcloud.Client, sandbox: Sandbox) -> None:
    sandbox.inject("latency", delay=0.3, path="^/v1/locations$")
    started = time.monotonic()
    client.locations.get_all()
    assert time.monotonic() - started >= 0.3


def test_response_lost_then_adopt_by_name(client: hcloud.Client, sandbox: Sandbox) -> None:
    """The create happened but the answer never came: the CAPH-style recovery must work."""
    sandbox.inject("response_lost", method="POST", path="^/v1/servers$")
    with pytest.raises(requests.ConnectionError):
        create(client, "lost", wait=False, labels={"aura.dev/uid": "u1"})
    with pytest.raises(APIException) as exc:
        create(client, "lost", wait=False)
    assert exc.value.code == "uniqueness_error"
    adopted = client.servers.get_by_name("lost")
    assert adopted is not None and adopted.labels == {"aura.dev/uid": "u1"}
    assert [s.id for s in client.servers.get_all(label_selector="aura.dev/uid=u1")] == [adopted.id]


def test_fault_matching_on_server_name(client: hcloud.Client, sandbox: Sandbox) -> None:
    sandbox.inject("http_error", status=500, server_name="victim")
    create(client, "bystander", wait=False)
    with pytest.raises(APIException):
        create(client, "victim", wait=False)
    victim = create(client, "victim", wait=False).server
    sandbox.inject("locked", server_name="victim", method="POST")
    with pytest.raises(APIException) as exc:
        victim.power_off()
    assert exc.value.code == "locked"


def test_probability_fault(client: hcloud.Client, sandbox: Sandbox) -> None:
    sandbox.inject("http_error", status=500, probability=1.0, path="^/v1/locations$")
    for _ in range(3):
        with pytest.raises(APIException):
            client.locations.get_all()
    sandbox.clear_faults()
    client.locations.get_all()
