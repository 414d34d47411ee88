"""SimulatedConfigurator against an httpx.MockTransport that plays the sandbox's admin API."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from aura.configure.base import ConfigTarget, ConfigurationError
from aura.controller.clients.sandbox_world import SimulatedConfigurator

TARGET = ConfigTarget(
    agent="default/demo",
    server_id=42,
    host="10.0.0.5",
    openclaw_version="2026.3.1",
    ssh_private_key="-----BEGIN OPENSSH " + "PRIVATE KEY----- secret",
    runtime_env={"ANTHROPIC_API_KEY": "sk-ant-secret"},
)


def _client(handle: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


def sandbox(status: int, body: object = None) -> tuple[SimulatedConfigurator, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=body if body is not None else {})

    return SimulatedConfigurator("http://sandbox:8080/admin/", _client(handle)), seen


async def test_2xx_is_configured_and_sends_only_the_version() -> None:
    configurator, seen = sandbox(200, {"id": 42, "configured": True})

    result = await configurator.configure(TARGET)

    assert result.ok
    assert result.failed_task is None
    [request] = seen
    assert request.method == "POST"
    assert str(request.url) == "http://sandbox:8080/admin/servers/42/configure"
    assert json.loads(request.content) == {"openclaw_version": "2026.3.1"}
    assert b"secret" not in request.content


async def test_204_is_configured() -> None:
    configurator, _ = sandbox(204)
    assert (await configurator.configure(TARGET)).ok


async def test_409_is_a_failed_run_with_the_sandboxs_reason() -> None:
    configurator, _ = sandbox(409, {"detail": "server 42 is starting"})

    result = await configurator.configure(TARGET)

    assert not result.ok
    assert result.message == "server 42 is not running yet: server 42 is starting"


async def test_409_without_a_body_still_explains() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(409)

    configurator = SimulatedConfigurator("http://sandbox", _client(handle))
    result = await configurator.configure(TARGET)

    assert not result.ok
    assert result.message == "server 42 is not running yet"


@pytest.mark.parametrize("status", [404, 500, 503])
async def test_other_statuses_raise(status: int) -> None:
    configurator, _ = sandbox(status)
    with pytest.raises(ConfigurationError, match=f"answered {status}"):
        await configurator.configure(TARGET)


async def test_network_errors_raise() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    configurator = SimulatedConfigurator("http://sandbox", _client(handle))
    with pytest.raises(ConfigurationError, match="ConnectError") as raised:
        await configurator.configure(TARGET)
    assert "refused" not in str(raised.value)  # the type only, never the exception's text


async def test_a_servers_gateway_url_is_asked_once_not_before_every_probe() -> None:
    from aura.controller.clients.sandbox_world import SandboxHosts

    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path.endswith("/servers/7"):
            return httpx.Response(404)  # not there (yet)
        return httpx.Response(200, json={"gateway_url": "http://sandbox:8080/_gateway/42"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http:
        hosts = SandboxHosts(http, "http://sandbox:8080/admin/")
        for _ in range(5):
            assert await hosts.gateway_url(42, None, 18789) == "http://sandbox:8080/_gateway/42"
        assert await hosts.gateway_url(7, None, 18789) is None
        assert await hosts.gateway_url(7, None, 18789) is None
    assert seen == ["/admin/servers/42", "/admin/servers/7", "/admin/servers/7"]
