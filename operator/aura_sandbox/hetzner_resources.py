"""The catalog (`/v1/server_types`, `/v1/locations`, `/v1/datacenters`) and `/v1/ssh_keys`
(images are in `hetzner_images`, prices in `pricing`).

Every resource the server object references is also served by id, because hcloud-python's
bound models reload lazily (hetzner.md 3.4).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from aura_sandbox import catalog, hetzner_render
from aura_sandbox.fast_json import dumps, json_response
from aura_sandbox.hetzner_api import (
    ApiError,
    by_path_id,
    invalid_input,
    json_body,
    list_filtered,
    list_response,
    sort_items,
)
from aura_sandbox.hetzner_servers import check_name, update_name_and_labels, validate_labels
from aura_sandbox.http_faults import WORLD_KEY
from aura_sandbox.model import SimSshKey
from aura_sandbox.world import World

Handler = Callable[[web.Request], Any]


def _world(request: web.Request) -> World:
    return request.app[WORLD_KEY]


_SORT: dict[str, Callable[[dict[str, Any]], Any]] = {
    "id": lambda i: i["id"],
    "name": lambda i: i["name"] or "",
}


# Catalog --------------------------------------------------------------------------------


def _catalog(
    key: str, items: list[dict[str, Any]], singular: str, extra: dict[str, Any]
) -> tuple[Handler, Handler]:
    by_id = {item["id"]: item for item in items}

    def priced(request: web.Request, item: dict[str, Any]) -> dict[str, Any]:
        # Server types carry the world's current prices (`pricing`), the rest is static.
        if key != "server_types":
            return item
        return _world(request).hetzner.pricing.server_type(item["name"])

    async def list_handler(request: web.Request) -> web.Response:
        found = items
        if "name" in request.query:
            found = [i for i in items if i["name"] == request.query["name"]]
        found = sort_items(found, request.query, _SORT)
        response = list_response(request, key, found, lambda i: priced(request, i))
        if extra:
            # Rare extra top-level keys (datacenters' `recommendation`): re-encode once.
            body = json.loads(response.text or "{}")
            body.update(extra)
            response.text = dumps(body)
        return response

    async def get_handler(request: web.Request) -> web.Response:
        item = by_path_id(request, by_id, singular.replace("_", " "))
        return json_response({singular: priced(request, item)})

    return list_handler, get_handler


# SSH keys -------------------------------------------------------------------------------


def fingerprint(public_key: str) -> str:
    """The MD5 fingerprint Hetzner shows, from the key's base64 blob."""
    parts = public_key.split()
    if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-", "sk-")):
        raise invalid_input("public_key", "invalid public key")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError:
        raise invalid_input("public_key", "invalid public key") from None
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, 32, 2))


def _ssh_key(world: World, request: web.Request) -> SimSshKey:
    return by_path_id(request, world.hetzner.ssh_keys, "ssh key")


async def list_ssh_keys(request: web.Request) -> web.Response:
    world = _world(request)
    q = request.query
    keys = list(world.hetzner.ssh_keys.values())
    if "fingerprint" in q:
        keys = [k for k in keys if k.fingerprint == q["fingerprint"]]
    return list_filtered(
        request,
        "ssh_keys",
        keys,
        hetzner_render.ssh_key,
        name=lambda k: k.name,
        labels=lambda k: k.labels,
        sort_keys={"id": lambda k: k.id, "name": lambda k: k.name},
    )


async def create_ssh_key(request: web.Request) -> web.Response:
    world = _world(request)
    body = await json_body(request)
    for required in ("name", "public_key"):
        if required not in body:
            raise invalid_input(required, "Missing data for required field.")
    keys = world.hetzner.ssh_keys.values()
    name = check_name(body["name"], {k.name for k in keys}, "SSH key")
    public_key = body["public_key"]
    if not isinstance(public_key, str):
        raise invalid_input("public_key", "Not a valid string.")
    fp = fingerprint(public_key)
    if any(k.fingerprint == fp for k in keys):
        raise ApiError(409, "uniqueness_error", "SSH key with the same fingerprint already exists")
    key = SimSshKey(
        id=world.hetzner.next_id("ssh_key"),
        name=name,
        public_key=public_key.strip(),
        fingerprint=fp,
        created=world.now(),
        labels=validate_labels(body.get("labels") or {}),
    )
    world.hetzner.ssh_keys[key.id] = key
    return json_response({"ssh_key": hetzner_render.ssh_key(key)}, status=201)


async def get_ssh_key(request: web.Request) -> web.Response:
    return json_response({"ssh_key": hetzner_render.ssh_key(_ssh_key(_world(request), request))})


async def update_ssh_key(request: web.Request) -> web.Response:
    world = _world(request)
    key = _ssh_key(world, request)
    body = await json_body(request)
    update_name_and_labels(key, body, world.hetzner.ssh_keys.values(), "SSH key")
    return json_response({"ssh_key": hetzner_render.ssh_key(key)})


async def delete_ssh_key(request: web.Request) -> web.Response:
    world = _world(request)
    del world.hetzner.ssh_keys[_ssh_key(world, request).id]
    return web.Response(status=204)


def setup_routes(app: web.Application) -> None:
    r = app.router
    recommendation = {"recommendation": catalog.DATACENTER_BY_LOCATION["fsn1"]["id"]}
    for key, items, singular, extra in (
        ("server_types", catalog.SERVER_TYPES, "server_type", {}),
        ("locations", catalog.LOCATIONS, "location", {}),
        ("datacenters", catalog.DATACENTERS, "datacenter", recommendation),
    ):
        list_handler, get_handler = _catalog(key, items, singular, extra)
        r.add_get(f"/v1/{key}", list_handler)
        r.add_get(f"/v1/{key}/{{id}}", get_handler)
    r.add_get("/v1/ssh_keys", list_ssh_keys)
    r.add_post("/v1/ssh_keys", create_ssh_key)
    r.add_get("/v1/ssh_keys/{id}", get_ssh_key)
    r.add_put("/v1/ssh_keys/{id}", update_ssh_key)
    r.add_delete("/v1/ssh_keys/{id}", delete_ssh_key)
