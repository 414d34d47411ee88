"""The OpenClaw gateway's health check: `GET /readyz`, then the WebSocket handshake.

A web UI can answer any path with 200 (clawdapus PR #358), so a ready gateway is one whose
`/readyz` returns a JSON object that says so: `"ready": true`, `"ok": true` or
`"status": "ok" | "ready"`. HTTP can answer while the agent runtime is wedged, so the full
check (`probe_gateway`) also completes the protocol handshake on the gateway's WebSocket
(`probe_handshake`, with aiohttp's client): challenge, connect with the gateway token,
hello-ok.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import httpx

from aura import __version__


@dataclass(frozen=True)
class Probe:
    ok: bool
    detail: str
    timed_out: bool = False
    """The gateway did not answer in time (a slow gateway, or a slow caller)."""
    local: bool = False
    """The probe never left this process (its connection pool stayed full): no evidence."""


async def probe_readyz(http: httpx.AsyncClient, base_url: str) -> Probe:
    """Probe `{base_url}/readyz`; never raises."""
    url = base_url.rstrip("/") + "/readyz"
    try:
        response = await http.get(url)
    except httpx.PoolTimeout:
        return Probe(False, f"{url} not probed (connection pool full)", local=True)
    except httpx.TimeoutException as exc:
        return Probe(False, f"{url} unreachable ({type(exc).__name__})", timed_out=True)
    except httpx.HTTPError as exc:
        return Probe(False, f"{url} unreachable ({type(exc).__name__})")
    if response.status_code != 200:
        return Probe(False, f"{url} answered {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        return Probe(False, f"{url} answered 200 without JSON")
    if not isinstance(body, dict):
        return Probe(False, f"{url} answered JSON that is not an object")
    if body.get("ready") is True or body.get("ok") is True or body.get("status") in ("ok", "ready"):
        return Probe(True, f"{url} reports ready")
    return Probe(False, f"{url} reports not ready: {str(body)[:200]}")


# The OpenClaw gateway protocol (openclaw.md 1.5): protocol 3 and 4 are both in the field.
MIN_PROTOCOL, MAX_PROTOCOL = 3, 4
PROBE_CLIENT = {
    "id": "openclaw-probe",
    "version": __version__,
    "platform": "linux",
    "mode": "probe",
}


def websocket_url(base_url: str) -> str:
    """The gateway's WebSocket: the same port as HTTP, at the root."""
    url = base_url.rstrip("/")
    if url.startswith("https://"):
        return "wss://" + url[len("https://") :]
    if url.startswith("http://"):
        return "ws://" + url[len("http://") :]
    return url


async def probe_handshake(
    base_url: str, token: str | None, *, handshake_seconds: float, proxy: str | None = None
) -> Probe:
    """Open the gateway's WebSocket and complete the OpenClaw handshake; never raises.

    Healthy only when the gateway sends `connect.challenge` and answers our `connect` with
    `hello-ok` within `handshake_seconds`: an HTTP face that answers while the agent runtime
    is wedged (challenge sent, connect never answered) counts as unhealthy. `proxy` is an HTTP proxy
    URL (the tailnet sidecar's). The token is sent only inside the connect frame, never
    logged or put in `detail`.
    """
    url = websocket_url(base_url)
    try:
        async with (
            aiohttp.ClientSession() as session,
            asyncio.timeout(handshake_seconds),
            session.ws_connect(url, proxy=proxy, autoping=True, max_msg_size=1 << 20) as ws,
        ):
            challenge = await _json_frame(ws)
            if challenge.get("event") != "connect.challenge":
                return Probe(False, f"{url}: no connect.challenge from the gateway")
            frame_id = uuid.uuid4().hex
            params: dict[str, Any] = {
                "minProtocol": MIN_PROTOCOL,
                "maxProtocol": MAX_PROTOCOL,
                "client": PROBE_CLIENT,
                "role": "operator",
                "scopes": ["operator.read"],
            }
            if token:
                params["auth"] = {"token": token}
            await ws.send_json(
                {"type": "req", "id": frame_id, "method": "connect", "params": params}
            )
            while True:
                answer = await _json_frame(ws)
                if answer.get("type") == "res" and answer.get("id") == frame_id:
                    break
            return _hello(url, answer)
    except TimeoutError:
        return Probe(
            False,
            f"{url}: handshake not completed within {handshake_seconds:.0f}s (wedged)",
            timed_out=True,
        )
    except (aiohttp.ClientError, OSError) as exc:
        return Probe(False, f"{url} handshake failed ({type(exc).__name__})")
    except _Closed as exc:
        return Probe(False, f"{url}: {exc}")


class _Closed(Exception):
    """The gateway closed the socket or sent something that is not a JSON object."""


async def _json_frame(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await ws.receive()
    if msg.type != aiohttp.WSMsgType.TEXT:
        raise _Closed(f"the gateway closed the socket ({msg.type.name})")
    try:
        frame = json.loads(msg.data)
    except ValueError:
        raise _Closed("the gateway sent a frame that is not JSON") from None
    if not isinstance(frame, dict):
        raise _Closed("the gateway sent a frame that is not an object")
    return frame


def _hello(url: str, answer: dict[str, Any]) -> Probe:
    payload = _object(answer.get("payload"))
    if answer.get("ok") is True and payload.get("type") == "hello-ok":
        return Probe(True, f"{url}: handshake completed (protocol {payload.get('protocol')})")
    error = _object(answer.get("error"))
    code = str(error.get("code") or "error")[:64]
    message = " ".join(str(error.get("message") or "").split())[:200]
    return Probe(False, f"{url}: connect refused: {code} {message}".rstrip())


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class Handshake(Protocol):
    """`probe_handshake`'s signature (the Operator holds one; unit tests give a fake)."""

    async def __call__(
        self,
        base_url: str,
        token: str | None,
        *,
        handshake_seconds: float,
        proxy: str | None = None,
    ) -> Probe: ...


async def probe_gateway(
    http: httpx.AsyncClient,
    base_url: str,
    token: str | None,
    *,
    handshake_seconds: float,
    proxy: str | None = None,
    handshake: Handshake = probe_handshake,
) -> Probe:
    """The full health check: `/readyz` ready, then the WebSocket handshake completes."""
    ready = await probe_readyz(http, base_url)
    if not ready.ok:
        return ready
    return await handshake(base_url, token, handshake_seconds=handshake_seconds, proxy=proxy)
