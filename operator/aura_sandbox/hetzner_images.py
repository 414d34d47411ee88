"""`/v1/images` and the two server actions that make or consume images: `create_image` and
`rebuild` (hetzner.md 2.6).

- `GET /v1/images`: system images and this project's snapshots and backups, filtered by `type`,
  `status`, `bound_to`, `architecture`, `name`, `label_selector` (`include_deprecated` is
  accepted; nothing here is deprecated). hcloud-python 2.27 sends `status=<per_page>` instead
  of the statuses it was given (hetzner.md 2.8): values that are not an image status are
  ignored rather than filtering everything out.
- `GET/PUT/DELETE /v1/images/{id}`: PUT changes `description`, `labels`, and `type` only from
  `backup` to `snapshot` (which unbinds it from its server). A `creating` image is locked
  (`423 locked`) for DELETE and protection changes; system images cannot be changed (404, as
  they are not the project's).
- `POST /v1/servers/{id}/actions/create_image` `{type, description, labels}` -> 201
  `{image, action}`; `POST /v1/servers/{id}/actions/rebuild` `{image, user_data}` -> 201
  `{action, root_password}`. Both take the server's lock (`423 locked` while another action
  runs); rebuild honours rebuild protection (`423 protected`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from aiohttp import web

from aura_sandbox import catalog, hetzner_render, lifecycle, lifecycle_images
from aura_sandbox.fast_json import json_response
from aura_sandbox.hetzner_api import (
    ApiError,
    by_path_id,
    invalid_input,
    json_body,
    list_filtered,
    locked,
    not_found,
    path_id,
    query_bool,
    query_ids,
)
from aura_sandbox.hetzner_servers import get_server, resolve_image, validate_labels
from aura_sandbox.http_faults import WORLD_KEY
from aura_sandbox.model import SimImage
from aura_sandbox.world import World

IMAGE_STATUSES = ("available", "creating", "unavailable")
_IMAGE_SORT: dict[str, Callable[[dict[str, Any]], Any]] = {
    "id": lambda i: i["id"],
    "name": lambda i: i["name"] or "",
    "created": lambda i: i["created"],
}


def _world(request: web.Request) -> World:
    return request.app[WORLD_KEY]


def _own_image(world: World, request: web.Request) -> SimImage:
    return by_path_id(request, world.hetzner.images, "image")


async def list_images(request: web.Request) -> web.Response:
    world = _world(request)
    q = request.query
    images = [*catalog.SYSTEM_IMAGES]
    images += [hetzner_render.image(world, i) for i in world.hetzner.images.values()]
    types = q.getall("type", [])
    for image_type in types:
        if image_type not in ("system", "app", "snapshot", "backup"):
            raise invalid_input("type", f"invalid type {image_type!r}")
    if types:
        images = [i for i in images if i["type"] in types]
    statuses = [s for s in q.getall("status", []) if s in IMAGE_STATUSES]
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


async def get_image(request: web.Request) -> web.Response:
    world = _world(request)
    rendered = hetzner_render.image_by_id(world, path_id(request))
    if rendered is None:
        raise not_found("image")
    return json_response({"image": rendered})


async def update_image(request: web.Request) -> web.Response:
    world = _world(request)
    image = _own_image(world, request)
    body = await json_body(request)
    if "description" in body and not isinstance(body["description"], str):
        raise invalid_input("description", "Not a valid string.")
    labels = validate_labels(body["labels"]) if "labels" in body else None
    if "type" in body and body["type"] != "snapshot":
        raise invalid_input("type", "Must be one of: snapshot.")
    if "description" in body:
        image.description = body["description"]
    if labels is not None:
        image.labels = labels
    if "type" in body:
        image.type, image.bound_to = "snapshot", None
    return json_response({"image": hetzner_render.image(world, image)})


async def delete_image(request: web.Request) -> web.Response:
    world = _world(request)
    image = _own_image(world, request)
    if image.protection_delete:
        raise ApiError(423, "protected", "image is delete protected")
    if image.status == "creating":
        raise locked("image")
    del world.hetzner.images[image.id]
    return web.Response(status=204)


async def change_image_protection(request: web.Request) -> web.Response:
    world = _world(request)
    image = _own_image(world, request)
    body = await json_body(request)
    if "delete" in body and not isinstance(body["delete"], bool):
        raise invalid_input("delete", "Not a valid boolean.")
    if image.status == "creating":
        raise locked("image")
    image.protection_delete = body.get("delete", image.protection_delete)
    action = lifecycle.new_action(
        world, "change_protection", [{"id": image.id, "type": "image"}], 0.5, lock=False
    )
    return json_response({"action": hetzner_render.action(world, action)}, status=201)


async def create_image(request: web.Request) -> web.Response:
    world = _world(request)
    server = get_server(world, path_id(request))
    body = await json_body(request)
    image_type = body.get("type", "snapshot")
    if image_type not in ("snapshot", "backup"):
        raise invalid_input("type", "Must be one of: snapshot, backup.")
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise invalid_input("description", "Not a valid string.")
    labels = validate_labels(body.get("labels") or {})
    if server.locked:
        raise locked()
    st = catalog.SERVER_TYPE_BY_NAME[server.server_type]
    image, action = lifecycle_images.create_image(
        world,
        server,
        image_type=image_type,
        description=description,
        labels=labels,
        architecture=st["architecture"],
        disk_size=st["disk"],
    )
    return json_response(
        {
            "image": hetzner_render.image(world, image),
            "action": hetzner_render.action(world, action),
        },
        status=201,
    )


async def rebuild(request: web.Request) -> web.Response:
    world = _world(request)
    server = get_server(world, path_id(request))
    body = await json_body(request)
    if "image" not in body:
        raise invalid_input("image", "Missing data for required field.")
    st = catalog.SERVER_TYPE_BY_NAME[server.server_type]
    image_id = resolve_image(world, body["image"], st)
    user_data = body.get("user_data")
    if user_data is not None and not isinstance(user_data, str):
        raise invalid_input("user_data", "Not a valid string.")
    if server.protection_rebuild:
        raise ApiError(423, "protected", "server is rebuild protected")
    if server.locked:
        raise locked()
    action = lifecycle_images.rebuild(world, server, image_id, user_data)
    password = None if server.ssh_keys else secrets.token_urlsafe(15)
    return json_response(
        {"action": hetzner_render.action(world, action), "root_password": password}, status=201
    )


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/v1/images", list_images)
    r.add_get("/v1/images/{id}", get_image)
    r.add_put("/v1/images/{id}", update_image)
    r.add_delete("/v1/images/{id}", delete_image)
    r.add_post("/v1/images/{id}/actions/change_protection", change_image_protection)
    r.add_post("/v1/servers/{id}/actions/create_image", create_image)
    r.add_post("/v1/servers/{id}/actions/rebuild", rebuild)
