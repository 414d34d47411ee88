"""`/v1/firewalls` and their actions (`set_rules`, `apply_to_resources`,
`remove_from_resources`).

Firewalls are bookkeeping only: rules are stored and rendered, never enforced. Applying one to a
server adds it to `public_net.firewalls` of that server; a firewall still applied somewhere
cannot be deleted (`422 resource_in_use`). A label selector target lists, under
`applied_to_resources`, the servers its selector matches when the firewall is read, as the real
API does; a malformed selector is `422 invalid_input` on `apply_to`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from aura_sandbox import hetzner_render, lifecycle
from aura_sandbox.fast_json import json_response
from aura_sandbox.hetzner_api import (
    ApiError,
    by_path_id,
    invalid_input,
    json_body,
    list_filtered,
)
from aura_sandbox.hetzner_servers import check_name, update_name_and_labels, validate_labels
from aura_sandbox.http_faults import WORLD_KEY
from aura_sandbox.label_selector import SelectorError, compile_selector
from aura_sandbox.model import SimAction, SimFirewall
from aura_sandbox.world import World


def _world(request: web.Request) -> World:
    return request.app[WORLD_KEY]


def _targets(world: World, apply_to: Any) -> tuple[list[int], list[str]]:
    """Server ids and label selectors of an `apply_to`/`remove_from` list."""
    if not isinstance(apply_to, list):
        raise invalid_input("apply_to", "must be a list")
    servers, selectors = [], []
    for target in apply_to:
        kind = target.get("type") if isinstance(target, dict) else None
        if kind == "server":
            sid = (target.get("server") or {}).get("id")
            if sid not in world.servers:
                raise invalid_input("apply_to", f"server {sid!r} not found")
            servers.append(sid)
        elif kind == "label_selector":
            selector = str((target.get("label_selector") or {}).get("selector", ""))
            try:
                compile_selector(selector)
            except SelectorError as exc:
                raise invalid_input("apply_to", f"invalid label selector: {exc}") from None
            selectors.append(selector)
        else:
            raise invalid_input("apply_to", "type must be server or label_selector")
    return servers, selectors


def _render(world: World, fw: SimFirewall) -> dict[str, Any]:
    """The firewall with each label selector's matched servers in `applied_to_resources`."""
    rendered = hetzner_render.firewall(fw)
    for target in rendered["applied_to"]:
        if target["type"] == "label_selector":
            matches = compile_selector(target["label_selector"]["selector"])
            target["applied_to_resources"] = [
                {"type": "server", "server": {"id": server.id}}
                for server in world.servers.values()
                if matches(server.labels)
            ]
    return rendered


def _firewall_action(
    world: World, fw: SimFirewall, command: str, server_id: int | None = None
) -> SimAction:
    resources: list[dict[str, Any]] = [{"id": fw.id, "type": "firewall"}]
    if server_id is not None:
        resources.insert(0, {"id": server_id, "type": "server"})
    return lifecycle.new_action(
        world, command, resources, world.config.timings.firewall_apply, lock=False
    )


def _apply(world: World, fw: SimFirewall, apply_to: Any) -> list[SimAction]:
    servers, selectors = _targets(world, apply_to)
    actions = []
    for sid in servers:
        if sid in fw.servers:
            raise ApiError(422, "firewall_already_applied", "firewall is already applied")
        fw.servers.append(sid)
        world.servers[sid].firewalls.append(fw.id)
        actions.append(_firewall_action(world, fw, "apply_firewall", sid))
    for sel in selectors:
        fw.selectors.append(sel)
        actions.append(_firewall_action(world, fw, "apply_firewall"))
    return actions


def _firewall(world: World, request: web.Request) -> SimFirewall:
    return by_path_id(request, world.hetzner.firewalls, "firewall")


def _rules(rules: Any) -> list[dict[str, Any]]:
    if not isinstance(rules, list) or len(rules) > 50:
        raise invalid_input("rules", "must be a list of at most 50 rules")
    result = []
    for rule in rules:
        if not isinstance(rule, dict) or rule.get("direction") not in ("in", "out"):
            raise invalid_input("rules", "direction must be in or out")
        if rule.get("protocol") not in ("tcp", "udp", "icmp", "esp", "gre"):
            raise invalid_input("rules", "invalid protocol")
        result.append(
            {
                "description": rule.get("description"),
                "direction": rule["direction"],
                "source_ips": rule.get("source_ips", []),
                "destination_ips": rule.get("destination_ips", []),
                "protocol": rule["protocol"],
                "port": rule.get("port"),
            }
        )
    return result


async def list_firewalls(request: web.Request) -> web.Response:
    world = _world(request)
    return list_filtered(
        request,
        "firewalls",
        list(world.hetzner.firewalls.values()),
        lambda fw: _render(world, fw),
        name=lambda f: f.name,
        labels=lambda f: f.labels,
        sort_keys={"id": lambda f: f.id, "name": lambda f: f.name},
    )


async def create_firewall(request: web.Request) -> web.Response:
    world = _world(request)
    body = await json_body(request)
    if "name" not in body:
        raise invalid_input("name", "Missing data for required field.")
    name = check_name(body["name"], {f.name for f in world.hetzner.firewalls.values()}, "firewall")
    _targets(world, body.get("apply_to") or [])  # reject bad targets before anything exists
    fw = SimFirewall(
        id=world.hetzner.next_id("firewall"),
        name=name,
        created=world.now(),
        rules=_rules(body.get("rules") or []),
        labels=validate_labels(body.get("labels") or {}),
    )
    world.hetzner.firewalls[fw.id] = fw
    actions = _apply(world, fw, body.get("apply_to") or [])
    return json_response(
        {
            "firewall": _render(world, fw),
            "actions": [hetzner_render.action(world, a) for a in actions],
        },
        status=201,
    )


async def get_firewall(request: web.Request) -> web.Response:
    world = _world(request)
    return json_response({"firewall": _render(world, _firewall(world, request))})


async def update_firewall(request: web.Request) -> web.Response:
    world = _world(request)
    fw = _firewall(world, request)
    body = await json_body(request)
    update_name_and_labels(fw, body, world.hetzner.firewalls.values(), "firewall")
    return json_response({"firewall": _render(world, fw)})


async def delete_firewall(request: web.Request) -> web.Response:
    world = _world(request)
    fw = _firewall(world, request)
    if fw.servers:
        raise ApiError(422, "resource_in_use", "firewall is still applied to resources")
    del world.hetzner.firewalls[fw.id]
    return web.Response(status=204)


def _actions_response(world: World, actions: list[SimAction]) -> web.Response:
    rendered = [hetzner_render.action(world, a) for a in actions]
    return json_response({"actions": rendered}, status=201)


async def set_rules(request: web.Request) -> web.Response:
    world = _world(request)
    fw = _firewall(world, request)
    body = await json_body(request)
    fw.rules = _rules(body.get("rules") or [])
    actions = [_firewall_action(world, fw, "set_firewall_rules")]
    actions += [_firewall_action(world, fw, "apply_firewall", sid) for sid in fw.servers]
    return _actions_response(world, actions)


async def apply_to_resources(request: web.Request) -> web.Response:
    world = _world(request)
    fw = _firewall(world, request)
    body = await json_body(request)
    return _actions_response(world, _apply(world, fw, body.get("apply_to")))


async def remove_from_resources(request: web.Request) -> web.Response:
    world = _world(request)
    fw = _firewall(world, request)
    body = await json_body(request)
    servers, selectors = _targets(world, body.get("remove_from"))
    actions = []
    for sid in servers:
        if sid not in fw.servers:
            raise ApiError(422, "firewall_resource_not_found", "firewall is not applied")
        fw.servers.remove(sid)
        world.servers[sid].firewalls.remove(fw.id)
        actions.append(_firewall_action(world, fw, "remove_firewall", sid))
    for sel in selectors:
        if sel in fw.selectors:
            fw.selectors.remove(sel)
            actions.append(_firewall_action(world, fw, "remove_firewall"))
    return _actions_response(world, actions)


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/v1/firewalls", list_firewalls)
    r.add_post("/v1/firewalls", create_firewall)
    r.add_get("/v1/firewalls/{id}", get_firewall)
    r.add_put("/v1/firewalls/{id}", update_firewall)
    r.add_delete("/v1/firewalls/{id}", delete_firewall)
    r.add_post("/v1/firewalls/{id}/actions/set_rules", set_rules)
    r.add_post("/v1/firewalls/{id}/actions/apply_to_resources", apply_to_resources)
    r.add_post("/v1/firewalls/{id}/actions/remove_from_resources", remove_from_resources)
