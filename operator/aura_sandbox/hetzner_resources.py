"""`/v1/images`, the catalog (`/v1/server_types`, `/v1/locations`, `/v1/datacenters`) and
`/v1/ssh_keys`.

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

from aura_sandbox import catalog, hetzner_render, lifecycle
from aura_sandbox.fast_json import dumps, json_response
from aura_sandbox.hetzner_api import (
    ApiError,
    by_path_id,
    invalid_input,
    json_body,
    list_filtered,
    list_response,
    not_found,
    path_id,
    query_bool,
    query_ids,
    sort_items,
)
from aura_sandbox.hetzner_servers import check_name, update_name_and_labels, validate_labels
from aura_sandbox.http_faults import WORLD_KEY
from aura_sandbox.model import SimImage, SimSshKey
from aura_sandbox.world import World

Handler = Callable[[web.Request], Any]


def _world(request: web.Request) -> World:
    return request.app[WORLD_KEY]


# Images ---------------------------------------------------------------------------------

_IMAGE_SORT: dict[str, Callable[[dict[str, Any]], Any]] = {
    "id": lambda i: i["id"],
    "name": lambda i: i["name"] or "",
    "created": lambda i: i["created"],
}


async def list_images(request: web.Request) -> web.Response:
    world = _world(request)
    q = request.query
    images = [*catalog.SYSTEM_IMAGES]
    images += [hetzner_render.image(world, i) for i in world.hetzner.images.values()]
    types = q.getall("type", [])
    if types:
        images = [i for i in images if i["type"] in types]
    statuses = q.getall("status", [])
    if statuses:
        images = [i for i in images if i["status"] in statuses]
    bound_to = query_ids(q, "bound_to")
    if bound_to:
        images = [i for i in images if i["bound_to"] in bound_to]
    if "architecture" in q:
        images = [i for i in images if i["architecture"] == q["architecture"]]
    query_bool(q, "include_deprecated")
    return list_filtered(
        request,
        "images",
        images,
        lambda i: i,
        name=lambda i: i["name"],
        labels=lambda i: i["labels"],
        sort_keys=_IMAGE_SORT,
    )


def _snapshot(world: World, request: web.Request) -> SimImage:
    return by_path_id(request, world.hetzner.images, "image")


async def get_image(request: web.Request) -> web.Response:
    world = _world(request)
    rendered = hetzner_render.image_by_id(world, path_id(request))
    if rendered is None:
        raise not_found("image")
    return json_response({"image": rendered})


async def update_image(request: web.Request) -> web.Response:
    world = _world(request)
    image = _snapshot(world, request)
    body = await json_body(request)
    if "description" in body:
        if not isinstance(body["description"], str):
            raise invalid_input("description", "Not a valid string.")
        image.description = body["description"]
    if "labels" in body:
        image.labels = validate_labels(body["labels"])
    if "type" in body:
        if body["type"] != "snapshot":
            raise invalid_input("type", "Must be one of: snapshot.")
        image.type, image.bound_to = "snapshot", None
    return json_response({"image": hetzner_render.image(world, image)})


async def delete_image(request: web.Request) -> web.Response:
    world = _world(request)
    image = _snapshot(world, request)
    if image.protection_delete:
        raise ApiError(423, "protected", "image is delete protected")
    del world.hetzner.images[image.id]
    return web.Response(status=204)


async def change_image_protection(request: web.Request) -> web.Response:
    world = _world(request)
    image = _snapshot(world, request)
    body = await json_body(request)
    if "delete" in body:
        if not isinstance(body["delete"], bool):
            raise invalid_input("delete", "Not a valid boolean.")
        image.protection_delete = body["delete"]
    action = lifecycle.new_action(
        world, "change_protection", [{"id": image.id, "type": "image"}], 0.5, lock=False
    )
    return json_response({"action": hetzner_render.action(world, action)}, status=201)


# Catalog --------------------------------------------------------------------------------


def _catalog(
    key: str, items: list[dict[str, Any]], singular: str, extra: dict[str, Any]
) -> tuple[Handler, Handler]:
    by_id = {item["id"]: item for item in items}

    async def list_handler(request: web.Request) -> web.Response:
        found = items
        if "name" in request.query:
            found = [i for i in items if i["name"] == request.query["name"]]
        found = sort_items(found, request.query, _IMAGE_SORT)
        response = list_response(request, key, found, lambda i: i)
        if extra:
            # Rare extra top-level keys (datacenters' `recommendation`): re-encode once.
            body = json.loads(response.text or "{}")
            body.update(extra)
            response.text = dumps(body)
        return response

    async def get_handler(request: web.Request) -> web.Response:
        item = by_path_id(request, by_id, singular.replace("_", " "))
        return json_response({singular: item})

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
    r.add_get("/v1/images", list_images)
    r.add_get("/v1/images/{id}", get_image)
    r.add_put("/v1/images/{id}", update_image)
    r.add_delete("/v1/images/{id}", delete_image)
    r.add_post("/v1/images/{id}/actions/change_protection", change_image_protection)
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
