"""The Tailscale API of the sandbox, under `/api/v2`, plus `/admin/tailnet/*` views.

Endpoints (the wire contract of Tailscale's public API v2 documentation; bodies validate
against Tailscale's published OpenAPI document, see the README's "Vendor specs"):

| Route (under `/api/v2`) | Scope | Success |
| --- | --- | --- |
| `POST /oauth/token` | client secret (Basic or form) | 200 token JSON |
| `GET /tailnet/{tailnet}/keys` | `auth_keys:read` | `{"keys": [{id, description}]}` |
| `POST /tailnet/{tailnet}/keys` | `auth_keys` | Key with the secret `key` |
| `GET /tailnet/{tailnet}/keys/{keyId}` | `auth_keys:read` | Key (`invalid: true` if unusable) |
| `DELETE /tailnet/{tailnet}/keys/{keyId}` | `auth_keys` | 200, empty body |
| `GET /tailnet/{tailnet}/devices` | `devices:core:read` | `{"devices": [...]}` |
| `GET /device/{deviceId}` | `devices:core:read` | Device |
| `DELETE /device/{deviceId}` | `devices:core` | 200, empty body |
| `POST /device/{deviceId}/authorized` | `devices:core` | 200 `{}` |
| `POST /device/{deviceId}/tags` | `devices:core` | 200 `{}` |
| `POST /device/{deviceId}/name` | `devices:core` | 200 `{}`; 409 when another device has the name |

`?all=true` on the key list returns whole keys (no secrets). Devices take `fields=default|all`
(`all` adds routes, `clientConnectivity`, `postureIdentity`, `distro`); the device list also
takes exact-match filters on top-level fields (`hostname=`, `isEphemeral=true`, repeated
`tags=` all required). `{deviceId}` is the `nodeId` or the legacy numeric `id`.

Every error is `{"message": "..."}`: 400 bad input or tags, 401 "API token invalid", 403
missing scope, 404 unknown tailnet/key/device. Calls take `Authorization: Bearer <token>` or
HTTP Basic with the token as user name and an empty password. `{tailnet}` is `-` or the
configured organization name. Injected request faults (`http_faults`) are rendered in the same
envelope; a 429 carries `Retry-After`.

Admin views (no auth, like the rest of `/admin`): `GET /admin/tailnet/devices` (every device,
all fields, plus `serverId`/`serverName`), `GET /admin/tailnet/keys` (no secrets, with
`uses` and `invalidReason`), `GET /admin/tailnet/joins` (which servers joined, are joining, or
why they never will), and a `tailnet` section in `GET /admin/world`. `setup()` also puts
`tailscale_url` (the base URL; clients append `/api/v2/...`), `tailscale_client_id`,
`tailscale_client_secret`, `tailscale_tailnet` and `tailscale_oauth_tags` in the ready line and
registers the state as the `tailnet` part of `--state`.

The state and every rule live in `tailnet.Tailnet`; this module only translates HTTP. It is
hand-written because no library simulates the Tailscale control plane API.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from aura_sandbox.admin import SUMMARIES, add_summary
from aura_sandbox.config import SandboxConfig
from aura_sandbox.http_faults import ERROR_RENDERERS, register_error_renderer
from aura_sandbox.tailnet import Tailnet, WorldLike
from aura_sandbox.tailnet_model import Principal, TailnetError, TailnetTimings
from aura_sandbox.world import World

TAILNET_KEY = web.AppKey("tailnet", Tailnet)
PREFIX = "/api/v2"
RETRY_AFTER_SECONDS = 60
"""`Retry-After` on an injected 429 (no source documents Tailscale's own value)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(status: int, message: str) -> web.Response:
    """The Tailscale error envelope."""
    response = web.json_response({"message": message}, status=status)
    if status == 429:
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _api(fn: Callable[[web.Request, Tailnet], Awaitable[web.StreamResponse]]) -> Handler:
    """Wrap a handler: hand it the tailnet and render `TailnetError` as the envelope."""

    async def handler(request: web.Request) -> web.StreamResponse:
        tailnet = request.app[TAILNET_KEY]
        try:
            return await fn(request, tailnet)
        except TailnetError as exc:
            return error_response(exc.status, exc.message)
        finally:
            if request.method != "GET":
                tailnet.world.mark_dirty()  # so `--state` autosave picks the change up

    return handler


def _bearer(request: web.Request) -> str | None:
    """The access token: `Bearer <token>`, or Basic with the token as user name."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        user, _ = _basic(value)
        return user or None
    return None


def _basic(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    user, _, password = decoded.partition(":")
    return user, password


def _caller(request: web.Request, tailnet: Tailnet, scope: str) -> Principal:
    principal = tailnet.authenticate(_bearer(request))
    tailnet.require(principal, scope)
    return principal


async def _json(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise TailnetError(400, "invalid JSON body") from exc


def _fields_all(request: web.Request) -> bool:
    fields = request.query.get("fields", "default")
    if fields not in ("all", "default"):
        raise TailnetError(400, f"invalid fields value {fields!r}: want all or default")
    return fields == "all"


def _ok_empty() -> web.Response:
    return web.Response(status=200)


# --- OAuth ---------------------------------------------------------------------------------


async def token(request: web.Request, tailnet: Tailnet) -> web.StreamResponse:
    form = await request.post()
    secret = ""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        _, secret = _basic(header[6:])
    if not secret:
        secret = str(form.get("client_secret", ""))
    grant = str(form.get("grant_type", "client_credentials"))
    if grant != "client_credentials":
        raise TailnetError(400, f"unsupported grant_type {grant!r}")
    scope = form.get("scope")
    tags = form.get("tags")
    principal, lifetime = tailnet.issue_token(
        secret,
        scope=str(scope) if scope is not None else None,
        tags=str(tags) if tags is not None else None,
    )
    return web.json_response(
        {
            "access_token": principal.token,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": " ".join(principal.scopes),
            "tags": " ".join(principal.tags),
        }
    )


# --- Keys ----------------------------------------------------------------------------------


async def list_keys(request: web.Request, tailnet: Tailnet) -> web.StreamResponse:
    principal = _caller(request, tailnet, "auth_keys:read")
    tailnet.resolve_tailnet(request.match_info["tailnet"])
    now = tailnet.world.now()
    full = request.query.get("all") == "true"
    keys = []
    for key in tailnet.list_keys(principal):
        if full:
            keys.append(key.to_api(now))
        else:
            # The spec: "an array of Key objects with `id` and `description` populated".
            keys.append(
                {"id": key.id} | ({"description": key.description} if key.description else {})
            )
    return web.json_response({"keys": keys})


async def create_key(request: web.Request, tailnet: Tailnet) -> web.StreamResponse:
    principal = _caller(request, tailnet, "auth_keys")
    tailnet.resolve_tailnet(request.match_info["tailnet"])
    key = tailnet.create_key(principal, await _json(request))
    return web.json_response(key.to_api(tailnet.world.now(), with_secret=True))


async def get_key(request: web.Request, tailnet: Tailnet) -> web.StreamResponse:
    principal = _caller(request, tailnet, "auth_keys:read")
    tailnet.resolve_tailnet(request.match_info["tailnet"])
    key = tailnet.get_key(principal, request.match_info["keyId"])
    return web.json_response(key.to_api(tailnet.world.now()))


async def delete_key(request: web.Request, tailnet: Tailnet) -> web.StreamResponse:
    principal = _caller(request, tailnet, "auth_keys")
    tailnet.resolve_tailnet(request.match_info["tailnet"])
    tailnet.delete_key(principal, request.match_info["keyId"])
    return _ok_empty()


# --- Devices -------------------------------------------------------------------------------


async def list_devices(request: web.Request, tailnet: Tailnet) -> web.StreamResponse:
    _caller(request, tailnet, "devices:core:read")
    tailnet.resolve_tailnet(request.match_info["tailnet"])
    all_fields = _fields_all(request)
    filters: dict[str, list[str]] = {}
    for name, value in request.query.items():
        if name != "fields":
            filters.setdefault(name, []).append(value)
    devices = tailnet.list_devices(filters)
    return web.json_response({"devices": [d.to_api(all_fields=all_fields) for d in devices]})


async def get_device(request: web.Request, tailnet: Tailnet) -> web.StreamResponse:
    _caller(request, tailnet, "devices:core:read")
    all_fields = _fields_all(request)
    device = tailnet.find_device(request.match_info["deviceId"])
    return web.json_response(device.to_api(all_fields=all_fields))


async def delete_device(request: web.Request, tailnet: Tailnet) -> web.StreamResponse:
    _caller(request, tailnet, "devices:core")
    tailnet.delete_device(request.match_info["deviceId"])
    return _ok_empty()


async def authorize_device(request: web.Request, tailnet: Tailnet) -> web.StreamResponse:
    _caller(request, tailnet, "devices:core")
    body = await _json(request)
    authorized = body.get("authorized") if isinstance(body, dict) else None
    if not isinstance(authorized, bool):
        raise TailnetError(400, "authorized must be a boolean")
    tailnet.set_authorized(request.match_info["deviceId"], authorized)
    return web.json_response({})


async def set_device_tags(request: web.Request, tailnet: Tailnet) -> web.StreamResponse:
    principal = _caller(request, tailnet, "devices:core")
    body = await _json(request)
    tags = body.get("tags") if isinstance(body, dict) else None
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise TailnetError(400, "tags must be a list of strings")
    tailnet.set_tags(principal, request.match_info["deviceId"], tags)
    return web.json_response({})


async def set_device_name(request: web.Request, tailnet: Tailnet) -> web.StreamResponse:
    _caller(request, tailnet, "devices:core")
    body = await _json(request)
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str):
        raise TailnetError(400, "name (a string) is required")
    tailnet.set_name(request.match_info["deviceId"], name)
    return web.json_response({})


async def not_found(request: web.Request, tailnet: Tailnet) -> web.StreamResponse:
    raise TailnetError(404, "not found")


# --- Admin views ---------------------------------------------------------------------------


async def admin_devices(request: web.Request) -> web.StreamResponse:
    return web.json_response({"devices": request.app[TAILNET_KEY].devices_summary()})


async def admin_keys(request: web.Request) -> web.StreamResponse:
    return web.json_response({"keys": request.app[TAILNET_KEY].keys_summary()})


async def admin_joins(request: web.Request) -> web.StreamResponse:
    return web.json_response({"joins": request.app[TAILNET_KEY].joins_summary()})


# --- Wiring --------------------------------------------------------------------------------


def build_tailnet(world: WorldLike, config: SandboxConfig) -> Tailnet:
    """The tailnet for `config`: its OAuth client, tags, time scale and timings."""
    return Tailnet(
        world,
        tailnet=config.tailscale_tailnet,
        client_id=config.tailscale_client_id,
        client_secret=config.tailscale_client_secret,
        client_tags=config.tailscale_oauth_tags,
        time_scale=config.time_scale,
        tag_owners=getattr(config, "tailscale_tag_owners", None),
        timings=getattr(config, "tailscale_timings", None) or TailnetTimings(),
    )


def add_routes(app: web.Application, tailnet: Tailnet) -> None:
    """Mount the tailnet's API and admin routes on `app` (no world listeners)."""
    app[TAILNET_KEY] = tailnet
    routes = [
        ("POST", "/oauth/token", token),
        ("GET", "/tailnet/{tailnet}/keys", list_keys),
        ("POST", "/tailnet/{tailnet}/keys", create_key),
        ("GET", "/tailnet/{tailnet}/keys/{keyId}", get_key),
        ("DELETE", "/tailnet/{tailnet}/keys/{keyId}", delete_key),
        ("GET", "/tailnet/{tailnet}/devices", list_devices),
        ("GET", "/device/{deviceId}", get_device),
        ("DELETE", "/device/{deviceId}", delete_device),
        ("POST", "/device/{deviceId}/authorized", authorize_device),
        ("POST", "/device/{deviceId}/tags", set_device_tags),
        ("POST", "/device/{deviceId}/name", set_device_name),
    ]
    for method, path, fn in routes:
        app.router.add_route(method, PREFIX + path, _api(fn))
    app.router.add_route("*", PREFIX + "/{rest:.*}", _api(not_found))
    app.router.add_get("/admin/tailnet/devices", admin_devices)
    app.router.add_get("/admin/tailnet/keys", admin_keys)
    app.router.add_get("/admin/tailnet/joins", admin_joins)


def setup(app: web.Application, world: World, config: SandboxConfig) -> None:
    """Create the tailnet, hook it to the world's servers, persist it, mount its routes."""
    tailnet = build_tailnet(world, config)
    world.add_server_listener(tailnet.on_server_event)
    world.register_part("tailnet", tailnet)
    add_routes(app, tailnet)
    if ERROR_RENDERERS in app:
        register_error_renderer(app, PREFIX, lambda status, _code, msg: error_response(status, msg))

    async def add_world_summary(app: web.Application) -> None:
        # The admin module creates its summary registry after this setup runs.
        if SUMMARIES in app:
            add_summary(app, "tailnet", tailnet.summary)

    app.on_startup.append(add_world_summary)
    world.ready_info.update(
        {
            "tailscale_url": world.base_url,
            "tailscale_client_id": config.tailscale_client_id,
            "tailscale_client_secret": config.tailscale_client_secret,
            "tailscale_tailnet": config.tailscale_tailnet,
            "tailscale_oauth_tags": list(config.tailscale_oauth_tags),
        }
    )
