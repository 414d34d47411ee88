"""`/v1/servers` and the server actions (hetzner.md sections 2.2-2.5, 2.13); `create_image`
and `rebuild` are in `hetzner_images`.

Validation order follows the real API: JSON shape, then field values (422 `invalid_input` with
`details.fields`), then references (server type, image, location, SSH keys, firewalls), then
uniqueness (409), then the per-server lock (423). State changes are delegated to `lifecycle`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from aura_sandbox import catalog, hetzner_render, lifecycle
from aura_sandbox.fast_json import json_response
from aura_sandbox.hetzner_api import (
    ApiError,
    invalid_input,
    json_body,
    list_response,
    locked,
    not_found,
    path_id,
    selector,
    sort_items,
)
from aura_sandbox.http_faults import WORLD_KEY
from aura_sandbox.label_selector import label_errors
from aura_sandbox.model import SERVER_STATUSES, SimAction, SimFirewall, SimServer, SimSshKey
from aura_sandbox.world import World

USER_DATA_LIMIT = 32 * 1024
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_SERVER_SORT = {"id": lambda s: s.id, "name": lambda s: s.name, "created": lambda s: s.created}
UNSIMULATED_ACTIONS = (
    "add_to_placement_group",
    "attach_iso",
    "attach_to_network",
    "change_alias_ips",
    "change_dns_ptr",
    "change_type",
    "detach_from_network",
    "detach_iso",
    "disable_backup",
    "disable_rescue",
    "enable_backup",
    "enable_rescue",
    "remove_from_placement_group",
    "request_console",
    "reset_password",
)


def _world(request: web.Request) -> World:
    return request.app[WORLD_KEY]


def get_server(world: World, server_id: int) -> SimServer:
    server = world.servers.get(server_id)
    if server is None:
        raise not_found("server")
    return server


def validate_name(world: World, name: Any, *, current: SimServer | None = None) -> str:
    if not isinstance(name, str) or not _HOSTNAME.match(name):
        raise invalid_input("name", "Name must be a valid hostname.")
    other = world.server_by_name(name)
    if other is not None and other is not current:
        raise ApiError(409, "uniqueness_error", "server name is already used")
    return name


def check_name(name: Any, taken: set[str], kind: str) -> str:
    if not isinstance(name, str) or not name or len(name) > 128:
        raise invalid_input("name", "Length must be between 1 and 128.")
    if name in taken:
        raise ApiError(409, "uniqueness_error", f"{kind} name is already used")
    return name


def update_name_and_labels(
    obj: SimSshKey | SimFirewall, body: dict[str, Any], peers: Iterable[Any], kind: str
) -> None:
    """Apply a PUT body's `name` (unique among `peers`) and `labels` to a named resource."""
    if "name" in body and body["name"] != obj.name:
        obj.name = check_name(body["name"], {p.name for p in peers}, kind)
    if "labels" in body:
        obj.labels = validate_labels(body["labels"])


def validate_labels(labels: Any) -> dict[str, str]:
    errors = label_errors(labels)
    if errors:
        raise invalid_input("labels", *errors)
    assert isinstance(labels, dict)
    return dict(labels)


def _resolve(value: Any, by_id: dict[int, Any], by_name: dict[str, Any], field: str) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        found = by_id.get(value)
    elif isinstance(value, str):
        found = by_name.get(value)
        if found is None and value.isdigit():
            found = by_id.get(int(value))
    else:
        raise invalid_input(field, "must be an ID or a name")
    if found is None:
        raise invalid_input(field, f"{field} {value!r} not found")
    return found


def resolve_image(world: World, value: Any, server_type: dict[str, Any]) -> int:
    """The id of the image `value` (id, or system image name) for `server_type`.

    A snapshot must be `available` and fit the type's disk: a bigger one is the real API's
    `422 invalid_input` "image disk is bigger than server type disk".
    """
    architecture = server_type["architecture"]
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        image_id = int(value)
        if any(i["id"] == image_id for i in catalog.SYSTEM_IMAGES):
            return image_id
        snapshot = world.hetzner.images.get(image_id)
        if snapshot is not None and snapshot.status == "available":
            if snapshot.architecture != architecture:
                raise invalid_input(
                    "image",
                    f"image architecture {snapshot.architecture} does not match "
                    f"server type architecture {architecture}",
                )
            if snapshot.disk_size > server_type["disk"]:
                # The live API's message (seen by several projects) names no field.
                message = "image disk is bigger than server type disk"
                details = {"fields": [{"name": "image", "messages": [message]}]}
                raise ApiError(422, "invalid_input", message, details)
            return image_id
    elif isinstance(value, str):
        for system in catalog.SYSTEM_IMAGES:
            if system["name"] == value and system["architecture"] == architecture:
                return int(system["id"])
    raise invalid_input("image", f"image {value!r} not found")


def _create_fields(world: World, body: dict[str, Any]) -> dict[str, Any]:
    for required in ("name", "server_type", "image"):
        if required not in body:
            raise invalid_input(required, "Missing data for required field.")
    name = body["name"]
    if not isinstance(name, str) or not _HOSTNAME.match(name):
        raise invalid_input("name", "Name must be a valid hostname.")
    user_data = body.get("user_data")
    if user_data is not None:
        if not isinstance(user_data, str):
            raise invalid_input("user_data", "Not a valid string.")
        if len(user_data.encode()) > USER_DATA_LIMIT:
            raise invalid_input("user_data", "Length must be between 0 and 32768.")
    labels = validate_labels(body.get("labels") or {})
    server_type = _resolve(
        body["server_type"], catalog.SERVER_TYPE_BY_ID, catalog.SERVER_TYPE_BY_NAME, "server_type"
    )
    if "location" in body and "datacenter" in body:
        raise invalid_input("location", "location and datacenter are mutually exclusive")
    if "datacenter" in body:
        dc = _resolve(
            body["datacenter"], catalog.DATACENTER_BY_ID, catalog.DATACENTER_BY_NAME, "datacenter"
        )
        location = dc["location"]
    elif "location" in body:
        location = _resolve(
            body["location"], catalog.LOCATION_BY_ID, catalog.LOCATION_BY_NAME, "location"
        )
    else:
        location = catalog.LOCATION_BY_NAME[server_type["locations"][0]["name"]]
    if not any(loc["name"] == location["name"] for loc in server_type["locations"]):
        raise ApiError(
            412,
            "resource_unavailable",
            f"server type {server_type['name']} is unavailable in {location['name']}",
        )
    image_id = resolve_image(world, body["image"], server_type)
    keys_by_name = {k.name: k for k in world.hetzner.ssh_keys.values()}
    ssh_keys = [
        _resolve(v, world.hetzner.ssh_keys, keys_by_name, "ssh_keys").id
        for v in body.get("ssh_keys") or []
    ]
    firewalls = []
    for entry in body.get("firewalls") or []:
        fw_id = entry.get("firewall") if isinstance(entry, dict) else None
        if fw_id not in world.hetzner.firewalls:
            raise invalid_input("firewalls", f"firewall {fw_id!r} not found")
        firewalls.append(fw_id)
    start = body.get("start_after_create", True)
    if not isinstance(start, bool):
        raise invalid_input("start_after_create", "Not a valid boolean.")
    public_net = body.get("public_net") or {}
    validate_name(world, name)
    return {
        "name": name,
        "server_type": server_type["name"],
        "location": location["name"],
        "image_id": image_id,
        "labels": labels,
        "user_data": user_data,
        "ssh_keys": ssh_keys,
        "firewalls": firewalls,
        "start_after_create": start,
        "enable_ipv4": public_net.get("enable_ipv4", True) is not False,
        "enable_ipv6": public_net.get("enable_ipv6", True) is not False,
    }


async def create_server(request: web.Request) -> web.Response:
    world = _world(request)
    fields = _create_fields(world, await json_body(request))
    server, action, next_actions = lifecycle.create_server(world, **fields)
    return json_response(
        {
            "server": hetzner_render.server(world, server),
            "action": hetzner_render.action(world, action),
            "next_actions": [hetzner_render.action(world, a) for a in next_actions],
            "root_password": server.root_password,
        },
        status=201,
    )


async def list_servers(request: web.Request) -> web.Response:
    world = _world(request)
    query = request.query
    statuses = query.getall("status", [])
    for status in statuses:
        if status not in SERVER_STATUSES:
            raise invalid_input("status", f"invalid status {status!r}")
    servers: list[SimServer]
    name = query.get("name")
    if name is not None:
        found = world.server_by_name(name)
        servers = [found] if found is not None else []
    else:
        servers = list(world.servers.values())
    match = selector(query)
    if match is not None:
        servers = [s for s in servers if match(s.labels)]
    if statuses:
        servers = [s for s in servers if s.status in statuses]
    servers = sort_items(servers, query, _SERVER_SORT)
    return list_response(request, "servers", servers, lambda s: hetzner_render.server(world, s))


async def get_server_handler(request: web.Request) -> web.Response:
    world = _world(request)
    server = get_server(world, path_id(request))
    return json_response({"server": hetzner_render.server(world, server)})


async def update_server(request: web.Request) -> web.Response:
    world = _world(request)
    server = get_server(world, path_id(request))
    body = await json_body(request)
    if "name" in body:
        name = validate_name(world, body["name"], current=server)
        del world.hetzner.server_ids_by_name[server.name]
        server.name = name
        world.hetzner.server_ids_by_name[name] = server.id
    if "labels" in body:
        server.labels = validate_labels(body["labels"])
    return json_response({"server": hetzner_render.server(world, server)})


async def delete_server(request: web.Request) -> web.Response:
    world = _world(request)
    server = get_server(world, path_id(request))
    if server.protection_delete:
        raise ApiError(423, "protected", "server is delete protected")
    action = lifecycle.delete_server(world, server)
    return json_response({"action": hetzner_render.action(world, action)})


async def server_action(request: web.Request, name: str) -> web.Response:
    world = _world(request)
    server = get_server(world, path_id(request))
    body = await json_body(request)
    if name == "change_protection":
        # Protection changes do not need the lock, like on the real API.
        for key in ("delete", "rebuild"):
            if key in body and not isinstance(body[key], bool):
                raise invalid_input(key, "Not a valid boolean.")
        server.protection_delete = body.get("delete", server.protection_delete)
        server.protection_rebuild = body.get("rebuild", server.protection_rebuild)
        action = lifecycle.new_action(
            world, "change_protection", lifecycle.server_resources(server), 0.5, lock=False
        )
        return json_response({"action": hetzner_render.action(world, action)}, status=201)
    if name in UNSIMULATED_ACTIONS:
        raise ApiError(422, "unsupported_error", f"{name} is not simulated by the Aura sandbox")
    if server.locked:
        raise locked()
    t = world.config.timings
    payload: dict[str, Any] = {}
    result: SimAction
    if name == "poweron":
        result = lifecycle.poweron(world, server)
    elif name == "poweroff":
        result = lifecycle.poweroff(world, server)
    elif name == "shutdown":
        result = lifecycle.shutdown(world, server)
    elif name == "reboot":
        result = lifecycle.reboot(world, server, "reboot_server", t.reboot)
    elif name == "reset":
        result = lifecycle.reboot(world, server, "reset_server", t.reset)
    else:
        raise ApiError(404, "not_found", "api route not found")
    payload["action"] = hetzner_render.action(world, result)
    return json_response(payload, status=201)


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/v1/servers", list_servers)
    r.add_post("/v1/servers", create_server)
    r.add_get("/v1/servers/{id}", get_server_handler)
    r.add_put("/v1/servers/{id}", update_server)
    r.add_delete("/v1/servers/{id}", delete_server)
    simulated = ("poweron", "poweroff", "shutdown", "reboot", "reset")
    for name in (*simulated, "change_protection", *UNSIMULATED_ACTIONS):
        r.add_post(f"/v1/servers/{{id}}/actions/{name}", _bind(name))


def _bind(name: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        return await server_action(request, name)

    return handler
