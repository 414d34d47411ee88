"""Action endpoints: `/v1/actions` and the per-resource action lists of servers, images and
firewalls (`/v1/{kind}/actions`, `/v1/{kind}/actions/{id}`, `/v1/{kind}/{id}/actions`, and the
deprecated `/v1/{kind}/{id}/actions/{action_id}`).

An action belongs to a resource kind when one of its `resources` has that type. Listing all
actions without `id` was removed from the real API on 2025-01-30; it is `422` here too.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from aura_sandbox import hetzner_render
from aura_sandbox.fast_json import json_response
from aura_sandbox.hetzner_api import (
    by_path_id,
    invalid_input,
    list_response,
    not_found,
    path_id,
    query_ids,
    sort_items,
)
from aura_sandbox.http_faults import WORLD_KEY
from aura_sandbox.model import SimAction
from aura_sandbox.world import World

ACTION_SORT: dict[str, Any] = {
    "id": lambda a: a.id,
    "command": lambda a: a.command,
    "status": lambda a: a.status,
    "started": lambda a: a.started,
    "finished": lambda a: (a.finished is None, a.finished or a.started),
    "progress": lambda a: a.progress_done,
}
# URL segment -> (resource type in `resources`, the owning collection of the world).
KINDS = {"servers": "server", "images": "image", "firewalls": "firewall"}


def _owner_exists(world: World, kind: str, resource_id: int) -> bool:
    h = world.hetzner
    if kind == "servers":
        return resource_id in h.servers
    if kind == "images":
        return resource_id in h.images
    return resource_id in h.firewalls


def _actions_of(world: World, rtype: str, resource_id: int | None) -> list[SimAction]:
    return [
        a
        for a in world.hetzner.actions.values()
        if any(
            r["type"] == rtype and (resource_id is None or r["id"] == resource_id)
            for r in a.resources
        )
    ]


def filtered_actions(request: web.Request, actions: list[SimAction]) -> list[SimAction]:
    """Apply the `id`, `status` and `sort` query parameters."""
    query = request.query
    ids = query_ids(query)
    if ids:
        wanted = set(ids)
        actions = [a for a in actions if a.id in wanted]
    statuses = query.getall("status", [])
    for status in statuses:
        if status not in ("running", "success", "error"):
            raise invalid_input("status", f"invalid status {status!r}")
    if statuses:
        actions = [a for a in actions if a.status in statuses]
    return sort_items(actions, query, ACTION_SORT)


async def list_actions(request: web.Request) -> web.Response:
    world = request.app[WORLD_KEY]
    ids = query_ids(request.query)
    if not ids:
        raise invalid_input("id", "at least one id is required")
    actions = [world.hetzner.actions[i] for i in dict.fromkeys(ids) if i in world.hetzner.actions]
    actions = filtered_actions(request, actions)
    return list_response(request, "actions", actions, lambda a: hetzner_render.action(world, a))


async def get_action(request: web.Request) -> web.Response:
    world = request.app[WORLD_KEY]
    action = by_path_id(request, world.hetzner.actions, "action")
    return json_response({"action": hetzner_render.action(world, action)})


def _kind_handlers(kind: str) -> tuple[Any, Any]:
    rtype = KINDS[kind]

    async def list_handler(request: web.Request) -> web.Response:
        world = request.app[WORLD_KEY]
        resource_id = path_id(request) if "id" in request.match_info else None
        if resource_id is not None and not _owner_exists(world, kind, resource_id):
            raise not_found(rtype)
        actions = filtered_actions(request, _actions_of(world, rtype, resource_id))
        return list_response(request, "actions", actions, lambda a: hetzner_render.action(world, a))

    async def get_handler(request: web.Request) -> web.Response:
        world = request.app[WORLD_KEY]
        nested = "action_id" in request.match_info
        action = world.hetzner.actions.get(path_id(request, "action_id" if nested else "id"))
        resource_id = path_id(request) if nested else None
        if action is None or not any(
            r["type"] == rtype and (resource_id is None or r["id"] == resource_id)
            for r in action.resources
        ):
            raise not_found("action")
        return json_response({"action": hetzner_render.action(world, action)})

    return list_handler, get_handler


def setup_routes(app: web.Application) -> None:
    """Register before the `{kind}/{id}` routes so `/servers/actions` is not read as an id."""
    r = app.router
    r.add_get("/v1/actions", list_actions)
    r.add_get("/v1/actions/{id}", get_action)
    for kind in KINDS:
        list_handler, get_handler = _kind_handlers(kind)
        r.add_get(f"/v1/{kind}/actions", list_handler)
        r.add_get(f"/v1/{kind}/actions/{{id}}", get_handler)
        r.add_get(f"/v1/{kind}/{{id}}/actions", list_handler)
        r.add_get(f"/v1/{kind}/{{id}}/actions/{{action_id}}", get_handler)
