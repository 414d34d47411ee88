"""The simulated gateway: `/readyz`, the OpenClaw WebSocket handshake, health faults and what
clears them (service restart, reboot), the heartbeat it writes to the disk, and the admin disk
API. Servers are driven with the official `hcloud` client."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import hcloud
import pytest
import requests

from aura_sandbox.harness import Sandbox
from tests.polling import wait_for
from tests.sandbox.conftest import FAST, admin
from tests.sandbox.hetzner_support import running

TOKEN = "gw-" + "test-token"


def _configured(client: hcloud.Client, sb: Sandbox, name: str) -> tuple[int, str]:
    server = running(client, name)
    done = admin(
        sb,
        "POST",
        f"/servers/{server.id}/configure",
        json={"openclaw_version": "2026.3.1", "gateway_token": TOKEN, "wait": True},
    )
    assert done.status_code == 200, done.text
    return server.id, done.json()["gateway_url"]


def _readyz(url: str) -> int | None:
    """The HTTP status of `/readyz`, None when nothing answers."""
    try:
        return requests.get(url + "/readyz", timeout=2).status_code
    except requests.ConnectionError:
        return None


def connect_frame(token: str = TOKEN, **overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "minProtocol": 3,
        "maxProtocol": 4,
        "client": {"id": "openclaw-probe", "version": "1", "platform": "linux", "mode": "probe"},
        "role": "operator",
        "scopes": ["operator.read"],
        "auth": {"token": token},
    }
    params.update(overrides)
    return {"type": "req", "id": "c1", "method": "connect", "params": params}


def handshake(url: str, frame: dict[str, Any] | None = None, timeout: float = 2.0) -> Any:
    """Open the WebSocket, check the challenge, send `frame`; the answer, or "timeout"."""

    async def run() -> Any:
        ws_url = url.replace("http://", "ws://")
        async with aiohttp.ClientSession() as session, session.ws_connect(ws_url) as ws:
            challenge = await ws.receive_json(timeout=timeout)
            assert challenge["type"] == "event" and challenge["event"] == "connect.challenge"
            assert challenge["payload"]["nonce"] and challenge["payload"]["ts"] > 0
            await ws.send_json(frame or connect_frame())
            try:
                answer = await ws.receive_json(timeout=timeout)
            except TimeoutError:
                return "timeout"
            if answer.get("ok"):
                await ws.send_json({"type": "req", "id": "h1", "method": "health"})
                answer["health"] = await ws.receive_json(timeout=timeout)
            return answer

    return asyncio.run(run())


def _ws_refused(url: str) -> bool:
    async def run() -> bool:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(url.replace("http://", "ws://")):
                    return False
            except (aiohttp.ClientError, aiohttp.WSServerHandshakeError):
                return True

    return asyncio.run(run())


def test_handshake_completes_with_the_token(fclient: hcloud.Client, fast: Sandbox) -> None:
    _, url = _configured(fclient, fast, "agent")
    assert _readyz(url) == 200
    hello = handshake(url)
    assert hello["ok"] is True and hello["id"] == "c1"
    assert hello["payload"]["type"] == "hello-ok" and hello["payload"]["protocol"] == 4
    assert hello["payload"]["server"]["version"] == "2026.3.1"
    assert hello["payload"]["auth"] == {"role": "operator", "scopes": ["operator.read"]}
    assert hello["health"]["ok"] is True and hello["health"]["payload"]["ok"] is True
    # An older client range negotiates protocol 3.
    assert handshake(url, connect_frame(maxProtocol=3))["payload"]["protocol"] == 3


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (connect_frame(token="wrong"), "UNAUTHORIZED"),
        (connect_frame(minProtocol=5, maxProtocol=6), "PROTOCOL_MISMATCH"),
        (connect_frame(client={"id": "my-probe", "mode": "probe"}), "INVALID_REQUEST"),
        (connect_frame(client={"id": "openclaw-probe", "mode": "robot"}), "INVALID_REQUEST"),
        ({"type": "req", "id": "x", "method": "health", "params": {}}, "INVALID_REQUEST"),
    ],
)
def test_handshake_refusals(
    fclient: hcloud.Client, fast: Sandbox, frame: dict[str, Any], code: str
) -> None:
    _, url = _configured(fclient, fast, "strict")
    answer = handshake(url, frame)
    assert answer["ok"] is False and answer["error"]["code"] == code


def test_a_client_that_leaves_before_connect_is_not_an_error(
    fclient: hcloud.Client, fast: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    """A probe that times out closes the socket after the challenge; the gateway goes on
    serving and logs no error (at 2,000 Agents a busy operator's probes did this)."""
    _, url = _configured(fclient, fast, "hasty")

    async def leave() -> None:
        ws_url = url.replace("http://", "ws://")
        async with aiohttp.ClientSession() as session, session.ws_connect(ws_url) as ws:
            await ws.receive_json(timeout=5)

    for _ in range(5):
        asyncio.run(leave())
    assert handshake(url)["ok"] is True
    assert not [r for r in caplog.records if r.levelno >= 40], caplog.text


def test_unhealthy_clears_on_service_restart(fclient: hcloud.Client, fast: Sandbox) -> None:
    server_id, url = _configured(fclient, fast, "sick")
    view = admin(fast, "PUT", f"/servers/{server_id}/health", json={"gateway": "unhealthy"})
    assert view.json()["gateway"] == "unhealthy"
    assert _readyz(url) == 503
    assert requests.get(url + "/readyz", timeout=2).json()["ready"] is False
    assert handshake(url)["error"]["code"] == "UNAVAILABLE"

    restart = admin(fast, "POST", f"/servers/{server_id}/gateway/restart", json={})
    assert restart.status_code == 202 and restart.json()["gateway"] == "down"
    wait_for(lambda: _readyz(url) == 200)
    assert handshake(url)["ok"] is True


def test_wedged_answers_http_but_never_completes_the_handshake(
    fclient: hcloud.Client, fast: Sandbox
) -> None:
    server_id, url = _configured(fclient, fast, "wedge")
    admin(fast, "PUT", f"/servers/{server_id}/health", json={"gateway": "wedged"})
    assert _readyz(url) == 200
    assert handshake(url, timeout=0.5) == "timeout"
    done = admin(fast, "POST", f"/servers/{server_id}/gateway/restart", json={"wait": True})
    assert done.status_code == 200 and done.json()["gateway"] == "serving"
    assert handshake(url)["ok"] is True


def test_a_fault_that_survives_restart_clears_on_reboot(
    fclient: hcloud.Client, fast: Sandbox
) -> None:
    server_id, url = _configured(fclient, fast, "stubborn")
    admin(
        fast,
        "PUT",
        f"/servers/{server_id}/health",
        json={"gateway": "wedged", "gateway_clears_on": "reboot"},
    )
    admin(fast, "POST", f"/servers/{server_id}/gateway/restart", json={"wait": True})
    assert handshake(url, timeout=0.5) == "timeout"
    server = fclient.servers.get_by_id(server_id)
    server.reboot().wait_until_finished(max_retries=10_000)
    assert handshake(url)["ok"] is True  # the configuration on disk starts the gateway again

    admin(
        fast,
        "PUT",
        f"/servers/{server_id}/health",
        json={"gateway": "unhealthy", "gateway_clears_on": "never"},
    )
    server.reset().wait_until_finished(max_retries=10_000)
    assert _readyz(url) == 503
    admin(fast, "PUT", f"/servers/{server_id}/health", json={"gateway": "healthy"})
    assert _readyz(url) == 200


def test_unreachable_server(fclient: hcloud.Client, fast: Sandbox) -> None:
    server_id, url = _configured(fclient, fast, "lost")
    view = admin(fast, "PUT", f"/servers/{server_id}/health", json={"reachable": False}).json()
    assert view["reachable"] is False and view["gateway"] == "down"
    assert _readyz(url) is None
    assert _ws_refused(url)
    restart = admin(fast, "POST", f"/servers/{server_id}/gateway/restart", json={})
    assert restart.status_code == 409 and "unreachable" in restart.json()["error"]
    configure = admin(
        fast, "POST", f"/servers/{server_id}/configure", json={"openclaw_version": "2026.3.1"}
    )
    assert configure.status_code == 409

    server = fclient.servers.get_by_id(server_id)
    server.reboot().wait_until_finished(max_retries=10_000)
    assert _readyz(url) is None  # by default a reboot does not bring it back
    admin(
        fast,
        "PUT",
        f"/servers/{server_id}/health",
        json={"reachable": False, "reachable_clears_on": "reboot"},
    )
    server.reboot().wait_until_finished(max_retries=10_000)
    assert _readyz(url) == 200


def test_health_input_is_checked(fclient: hcloud.Client, fast: Sandbox) -> None:
    server = running(fclient, "checked")
    for body, field in (
        ({"gateway": "sleepy"}, "gateway"),
        ({"gateway_clears_on": "tuesday"}, "gateway_clears_on"),
        ({"reachable": "no"}, "reachable"),
    ):
        refused = admin(fast, "PUT", f"/servers/{server.id}/health", json=body)
        assert refused.status_code == 422 and field in refused.json()["error"]
    assert admin(fast, "PUT", "/servers/1/health", json={}).status_code == 404


def test_gateway_writes_a_heartbeat_to_the_disk(fclient: hcloud.Client, fast: Sandbox) -> None:
    server_id, _ = _configured(fclient, fast, "beating")
    path = f"/servers/{server_id}/disk/var/lib/openclaw/heartbeat"

    def beats() -> int:
        response = admin(fast, "GET", path)
        return int(json.loads(response.content)["beats"]) if response.status_code == 200 else 0

    wait_for(lambda: beats() >= 3)
    # A wedged runtime stops writing it.
    admin(fast, "PUT", f"/servers/{server_id}/health", json={"gateway": "wedged"})
    frozen = beats()
    time.sleep(4 * 30 * FAST)  # four heartbeat intervals
    assert beats() == frozen


def test_admin_disk_api(fclient: hcloud.Client, fast: Sandbox) -> None:
    server = running(fclient, "files")
    base = f"/servers/{server.id}/disk"
    assert admin(fast, "PUT", base + "/srv/a.txt", data=b"hello").status_code == 201
    assert admin(fast, "PUT", base + "/srv/a.txt", data=b"hello!").status_code == 204
    assert admin(fast, "GET", base + "/srv/a.txt").content == b"hello!"
    listing = admin(fast, "GET", base).json()
    assert listing["files"] == {"/srv/a.txt": 6}
    assert listing["disk_gb"] == 40 and listing["used_gb"] == pytest.approx(1.41)
    assert admin(fast, "PUT", base, json={"base_gb": 41}).status_code == 422
    # `..` escaped so that the HTTP client does not resolve it first.
    assert admin(fast, "PUT", base + "/srv/%2E%2E/etc/passwd", data=b"x").status_code == 422
    assert admin(fast, "PUT", base + "/srv//x", data=b"x").status_code == 422
    assert admin(fast, "DELETE", base + "/srv/a.txt").status_code == 204
    assert admin(fast, "GET", base + "/srv/a.txt").status_code == 404
    assert admin(fast, "DELETE", base + "/srv/a.txt").status_code == 404


def test_a_stopped_gateway_is_down_writes_nothing_and_a_boot_starts_it(
    fclient: hcloud.Client, fast: Sandbox
) -> None:
    server_id, url = _configured(fclient, fast, "quiet")
    stopped = admin(fast, "POST", f"/servers/{server_id}/gateway", json={"running": False})
    assert stopped.status_code == 200 and stopped.json()["gateway"] == "down"
    assert _readyz(url) is None
    beat = f"/servers/{server_id}/disk/var/lib/openclaw/heartbeat"
    before = admin(fast, "GET", beat).content
    time.sleep(4 * 30 * FAST)  # four heartbeat intervals: a running gateway would write
    assert admin(fast, "GET", beat).content == before
    refused = admin(fast, "POST", f"/servers/{server_id}/gateway", json={"running": "no"})
    assert refused.status_code == 422 and "running" in refused.json()["error"]

    started = admin(fast, "POST", f"/servers/{server_id}/gateway", json={"running": True})
    assert started.json()["gateway"] == "serving"
    admin(fast, "POST", f"/servers/{server_id}/gateway", json={"running": False})
    fclient.servers.reboot(fclient.servers.get_by_id(server_id)).wait_until_finished()
    wait_for(lambda: _readyz(url) == 200, timeout=10)


def test_a_configuration_push_hands_the_gateway_to_a_new_token(
    fclient: hcloud.Client, fast: Sandbox
) -> None:
    server_id, url = _configured(fclient, fast, "warm")
    path = f"/servers/{server_id}/gateway/config"
    other = admin(fast, "POST", path, json={"openclaw_version": "2026.4.0", "gateway_token": "x"})
    assert other.status_code == 409 and "not installed" in other.json()["error"]
    missing = admin(fast, "POST", path, json={"openclaw_version": "2026.3.1"})
    assert missing.status_code == 422 and "gateway_token" in missing.json()["error"]
    first = {"openclaw_version": "2026.3.1", "gateway_token": "c1"}
    started = admin(fast, "POST", path, json=first)
    assert started.status_code == 202 and started.json()["gateway"] == "down"
    busy = admin(fast, "POST", path, json=first)
    assert busy.status_code == 409  # one run at a time
    wait_for(lambda: _readyz(url) == 200)
    body = {"openclaw_version": "2026.3.1", "gateway_token": "customer-token", "wait": True}
    pushed = admin(fast, "POST", path, json=body)
    assert pushed.status_code == 200 and pushed.json()["gateway"] == "serving"
    assert handshake(url)["error"]["code"] == "UNAUTHORIZED"  # the old token is gone
    assert handshake(url, connect_frame(token="customer-token"))["ok"] is True
    bare = running(fclient, "bare")
    refused = admin(fast, "POST", f"/servers/{bare.id}/gateway/config", json=body)
    assert refused.status_code == 409 and "not installed and configured" in refused.json()["error"]
