"""Simulated agent gateways: what an OpenClaw gateway on each server would answer.

Address: every server's gateway is `{sandbox}/_gateway/{server_id}` on the sandbox's own
loopback port, e.g. `http://127.0.0.1:PORT/_gateway/58000001`, with `GET /healthz` (liveness),
`GET /readyz` (readiness) and the WebSocket at the root (`ws://.../_gateway/58000001`), like
OpenClaw's gateway port (openclaw.md 1.5). An operator finds it in `GET /admin/servers/{id}`
(`gateway_url`); in production the same probes go to the server's tailnet address, port 18789.

Behaviour follows `host.gateway_state`:

- `down` (unknown or deleted server, off, booting, rebooting, unreachable, not configured,
  being configured, service restarting): the connection is closed without an answer, which
  clients report as a connection error, never as an HTTP status;
- `unhealthy`: `/healthz` and `/readyz` answer 503 with `{"ready": false, ...}`; the WebSocket
  sends the challenge, then refuses `connect` with `UNAVAILABLE` and closes;
- `wedged`: HTTP answers as if ready, the WebSocket sends the challenge and never answers;
- `serving`: 200 with JSON (`/readyz`: `{"ready": true, "status": "ready", "version", ...}`),
  and the handshake below completes.

The WebSocket handshake (openclaw.md 1.5, protocol 3 and 4): the gateway sends
`{"type":"event","event":"connect.challenge","payload":{"nonce","ts"}}`; the first client frame
must be `{"type":"req","id","method":"connect","params":{minProtocol, maxProtocol, client:{id,
version, platform, mode}, role, scopes, auth:{token}}}` (at most 64 KiB). The client id and
mode must be in OpenClaw's enums; the protocol ranges must overlap; the token must equal the
one the configuration run wrote to the disk (no token configured: auth mode `none`). Success
is `{"type":"res","id","ok":true,"payload":{"type":"hello-ok","protocol",...}}`; a failure is
`ok:false` with `error:{code,message}` and the socket closes. After hello the `health` method
answers `{"ok": true, ...}`. Device signatures are not checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from typing import Any

from aiohttp import WSMsgType, web

from aura_sandbox import disk, host
from aura_sandbox.config import SandboxConfig
from aura_sandbox.http_faults import WORLD_KEY, drop_connection
from aura_sandbox.model import SimServer
from aura_sandbox.world import World

PREFIX = "/_gateway"
PROTOCOLS = (3, 4)
MAX_PREAUTH_FRAME = 64 * 1024
CONNECT_TIMEOUT = 30.0
CLIENT_IDS = frozenset(
    {
        "webchat-ui", "openclaw-control-ui", "openclaw-browser-copilot", "openclaw-tui",
        "webchat", "cli", "gateway-client", "openclaw-macos", "openclaw-linux", "openclaw-ios",
        "openclaw-watchos", "openclaw-android", "node-host", "openclaw-worker", "test",
        "fingerprint", "openclaw-probe",
    }
)  # fmt: skip
CLIENT_MODES = frozenset({"webchat", "cli", "ui", "backend", "node", "worker", "probe", "test"})


def _server(request: web.Request) -> SimServer | None:
    world = request.app[WORLD_KEY]
    try:
        return world.servers.get(int(request.match_info["id"]))
    except ValueError:
        return None


def _answering(request: web.Request) -> tuple[SimServer, host.GatewayState]:
    server = _server(request)
    state = host.gateway_state(server)
    if server is None or state == "down":
        raise drop_connection(request)
    return server, state


async def healthz(request: web.Request) -> web.Response:
    _, state = _answering(request)
    if state == "unhealthy":
        return web.json_response({"ok": False, "status": "unhealthy"}, status=503)
    return web.json_response({"ok": True, "status": "live"})


async def readyz(request: web.Request) -> web.Response:
    server, state = _answering(request)
    if state == "unhealthy":
        return web.json_response(
            {"ready": False, "status": "not ready", "checks": {"gateway": "error"}}, status=503
        )
    return web.json_response(
        {
            "ready": True,
            "status": "ready",
            "version": server.openclaw_version,
            "host": server.name,
            "checks": {"gateway": "ok", "config": "ok"},
        }
    )


def _frame_error(frame_id: Any, code: str, message: str) -> dict[str, Any]:
    return {"type": "res", "id": frame_id, "ok": False, "error": {"code": code, "message": message}}


def check_connect(frame: Any, token: str | None) -> tuple[int, dict[str, Any]] | dict[str, Any]:
    """Validate a `connect` request: `(protocol, params)` or the error frame to send."""
    frame_id = frame.get("id") if isinstance(frame, dict) else None
    if (
        not isinstance(frame, dict)
        or frame.get("type") != "req"
        or frame.get("method") != "connect"
    ):
        return _frame_error(frame_id, "INVALID_REQUEST", "first frame must be a connect request")
    params = frame.get("params")
    if not isinstance(params, dict):
        return _frame_error(frame_id, "INVALID_REQUEST", "connect needs params")
    low, high = params.get("minProtocol"), params.get("maxProtocol")
    if not isinstance(low, int) or not isinstance(high, int):
        return _frame_error(frame_id, "INVALID_REQUEST", "minProtocol and maxProtocol required")
    usable = [p for p in PROTOCOLS if low <= p <= high]
    if not usable:
        return _frame_error(
            frame_id, "PROTOCOL_MISMATCH", f"server speaks protocols {list(PROTOCOLS)}"
        )
    client = params.get("client")
    client_id = str(client.get("id", "")).lower() if isinstance(client, dict) else ""
    mode = str(client.get("mode", "")).lower() if isinstance(client, dict) else ""
    if client_id not in CLIENT_IDS:
        return _frame_error(frame_id, "INVALID_REQUEST", f"unknown client id {client_id!r}")
    if mode not in CLIENT_MODES:
        return _frame_error(frame_id, "INVALID_REQUEST", f"unknown client mode {mode!r}")
    auth = params.get("auth")
    given = auth.get("token") if isinstance(auth, dict) else None
    if token is not None and not (
        isinstance(given, str) and secrets.compare_digest(given.encode(), token.encode())
    ):
        return _frame_error(frame_id, "UNAUTHORIZED", "gateway token mismatch")
    return max(usable), params


def _hello(frame_id: Any, protocol: int, server: SimServer, params: dict[str, Any]) -> Any:
    role = params.get("role") if params.get("role") in ("operator", "node") else "operator"
    scopes = [s for s in params.get("scopes") or [] if isinstance(s, str)]
    return {
        "type": "res",
        "id": frame_id,
        "ok": True,
        "payload": {
            "type": "hello-ok",
            "protocol": protocol,
            "server": {"version": server.openclaw_version, "host": server.name},
            "features": {"methods": ["health"], "events": ["tick"]},
            "snapshot": {},
            "auth": {"role": role, "scopes": scopes},
            "policy": {
                "maxPayload": 25 * 1024 * 1024,
                "maxBufferedBytes": 50 * 1024 * 1024,
                "tickIntervalMs": 30_000,
            },
        },
    }


async def _first_frame(ws: web.WebSocketResponse) -> Any:
    msg = await ws.receive(timeout=CONNECT_TIMEOUT)
    if msg.type != WSMsgType.TEXT or len(msg.data) > MAX_PREAUTH_FRAME:
        return None
    try:
        return json.loads(msg.data)
    except ValueError:
        return None


async def websocket(request: web.Request) -> web.StreamResponse:
    server, state = _answering(request)
    ws = web.WebSocketResponse(max_msg_size=MAX_PREAUTH_FRAME * 400)
    await ws.prepare(request)
    nonce = secrets.token_hex(16)
    await ws.send_json(
        {
            "type": "event",
            "event": "connect.challenge",
            "payload": {"nonce": nonce, "ts": int(time.time() * 1000)},
        }
    )
    if state == "wedged":
        # The runtime never answers: hold the socket until the client gives up.
        with contextlib.suppress(asyncio.TimeoutError):
            async for _ in ws:
                pass
        return ws
    try:
        frame = await _first_frame(ws)
    except TimeoutError:
        await ws.close()
        return ws
    if ws.closed:  # the client gave up before its connect frame (a probe's own timeout)
        return ws
    frame_id = frame.get("id") if isinstance(frame, dict) else None
    if state == "unhealthy":
        await ws.send_json(_frame_error(frame_id, "UNAVAILABLE", "gateway runtime is unhealthy"))
        await ws.close()
        return ws
    checked = check_connect(frame, disk.gateway_token(server.disk))
    if isinstance(checked, dict):
        with contextlib.suppress(ConnectionResetError):  # a client that left gets no answer
            await ws.send_json(checked)
        await ws.close(code=1008)
        return ws
    protocol, params = checked
    await ws.send_json(_hello(frame_id, protocol, server, params))
    async for msg in ws:
        if host.gateway_state(server) not in ("serving",):
            break
        if msg.type != WSMsgType.TEXT:
            continue
        try:
            req = json.loads(msg.data)
        except ValueError:
            continue
        if not isinstance(req, dict) or req.get("type") != "req":
            continue
        if req.get("method") == "health":
            payload = {"ok": True, "ts": int(time.time() * 1000), "host": server.name}
            await ws.send_json({"type": "res", "id": req.get("id"), "ok": True, "payload": payload})
        else:
            await ws.send_json(
                _frame_error(
                    req.get("id"), "INVALID_REQUEST", f"unknown method {req.get('method')!r}"
                )
            )
    await ws.close()
    return ws


async def _heartbeats(app: web.Application) -> Any:
    task = asyncio.create_task(host.heartbeat_loop(app[WORLD_KEY]))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def setup(app: web.Application, world: World, config: SandboxConfig) -> None:
    app.router.add_get(PREFIX + "/{id}/healthz", healthz)
    app.router.add_get(PREFIX + "/{id}/readyz", readyz)
    app.router.add_get(PREFIX + "/{id}", websocket)
    app.router.add_get(PREFIX + "/{id}/", websocket)
    app.cleanup_ctx.append(_heartbeats)
