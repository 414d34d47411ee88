"""Conformance: power actions, locks, snapshots and the action endpoints."""

from __future__ import annotations

import time

import hcloud
import pytest
from hcloud import APIException
from hcloud.actions import ActionFailedException, ActionTimeoutException

from aura_sandbox.harness import Sandbox
from tests.polling import wait_for
from tests.sandbox.conftest import TIME_SCALE, Http, validated_client
from tests.sandbox.hetzner_support import create, running
from tests.sandbox.openapi import OpenApiValidator


def test_power_cycle(client: hcloud.Client) -> None:
    server = running(client, "cycle")
    action = server.power_off()
    assert action.command == "stop_server"
    action.wait_until_finished()
    server.reload()
    assert server.status == "off"

    action = server.power_on()
    assert action.command == "start_server"
    server.reload()
    assert server.status == "starting"
    action.wait_until_finished()
    server.reload()
    assert server.status == "running"

    for method, command in (("reboot", "reboot_server"), ("reset", "reset_server")):
        action = getattr(server, method)()
        assert action.command == command
        action.wait_until_finished()
        assert action.status == "success" and action.progress == 100
        assert action.finished is not None
        server.reload()
        assert server.status == "running"


def test_shutdown_only_sends_the_signal(client: hcloud.Client) -> None:
    server = running(client, "acpi")
    action = server.shutdown()
    assert action.command == "shutdown_server"
    action.wait_until_finished()
    assert action.status == "success"
    server.reload()
    # The action is done long before the server is: it reports the signal, not the power state.
    assert server.status in ("running", "stopping")
    wait_for(lambda: client.servers.get_by_id(server.id).status == "off")


def test_shutdown_can_leave_the_server_on(validator: OpenApiValidator) -> None:
    with Sandbox(time_scale=TIME_SCALE, shutdown_leaves_on_probability=1.0) as sb:
        client = validated_client(sb, validator)
        server = running(client, "stubborn")
        server.shutdown().wait_until_finished()
        time.sleep(30 * TIME_SCALE)
        assert client.servers.get_by_id(server.id).status == "running"


def test_shutdown_ignored_fault(client: hcloud.Client, sandbox: Sandbox) -> None:
    server = running(client, "deaf")
    sandbox.inject("shutdown_ignored", server_name="deaf")
    server.shutdown().wait_until_finished()
    time.sleep(30 * TIME_SCALE)
    assert client.servers.get_by_id(server.id).status == "running"


def test_locked_while_an_action_runs(client: hcloud.Client, http: Http) -> None:
    server = running(client, "busy")
    image = server.create_image(description="long")
    assert client.servers.get_by_id(server.id).locked is True
    with pytest.raises(APIException) as exc:
        server.power_off()
    assert exc.value.code == "locked"
    raw = http.post(f"/servers/{server.id}/actions/reboot")
    assert raw.status_code == 423
    assert raw.json()["error"]["message"] == "cannot perform operation because server is locked"
    image.action.wait_until_finished()
    assert client.servers.get_by_id(server.id).locked is False
    server.power_off().wait_until_finished()


def test_locked_right_after_create(client: hcloud.Client) -> None:
    response = create(client, "fresh", wait=False)
    with pytest.raises(APIException) as exc:
        response.server.power_off()
    assert exc.value.code == "locked"


def test_snapshot_lifecycle(client: hcloud.Client) -> None:
    server = running(client, "snapme")
    result = server.create_image(description="nightly", labels={"aura.dev/agent": "snapme"})
    assert result.action.command == "create_image"
    assert result.image.type == "snapshot"
    assert result.image.status == "creating"
    assert result.image.created_from.id == server.id
    assert result.image.name is None

    result.action.wait_until_finished()
    image = client.images.get_by_id(result.image.id)
    assert image.status == "available"
    assert image.labels == {"aura.dev/agent": "snapme"}
    assert image.image_size is not None

    found = client.images.get_all(type=["snapshot"], label_selector="aura.dev/agent=snapme")
    assert [i.id for i in found] == [image.id]
    assert client.images.get_all(type=["snapshot"], label_selector="aura.dev/agent=other") == []

    client.images.update(image, description="kept", labels={"keep": "yes"})
    assert client.images.get_by_id(image.id).description == "kept"

    # Snapshots survive their server.
    server.delete().wait_until_finished()
    assert client.images.get_by_id(image.id).status == "available"

    # A server can be created from the snapshot.
    clone = create(client, "clone", image=image).server
    assert clone.image.id == image.id

    assert client.images.delete(image) is True
    with pytest.raises(APIException) as exc:
        client.images.get_by_id(image.id)
    assert exc.value.code == "not_found"


def test_action_endpoints(client: hcloud.Client, http: Http) -> None:
    response = create(client, "acts")
    server = response.server
    ids = [response.action.id, response.next_actions[0].id]

    listed = http.get("/actions", params=[("id", ids[0]), ("id", ids[1])]).json()["actions"]
    assert [a["id"] for a in listed] == ids
    assert all(a["status"] == "success" and a["progress"] == 100 for a in listed)
    assert http.get("/actions").status_code == 422

    own = client.servers.get_actions_list(server).actions
    assert {a.command for a in own} == {"create_server", "start_server"}
    assert [a.command for a in client.servers.get_actions(server, sort=["id:desc"])] == [
        "start_server",
        "create_server",
    ]
    assert client.servers.get_actions(server, status=["running"]) == []

    everything = client.servers.actions.get_all()
    assert {a.id for a in everything} >= set(ids)
    assert client.servers.actions.get_by_id(ids[0]).command == "create_server"

    deprecated = http.get(f"/servers/{server.id}/actions/{ids[0]}")
    assert deprecated.json()["action"]["id"] == ids[0]
    assert http.get(f"/servers/{server.id}/actions/999").status_code == 404
    assert http.get("/actions/1").json()["error"]["code"] == "not_found"


def test_progress_rises_while_running(sandbox: Sandbox, client: hcloud.Client) -> None:
    server = running(client, "slowsnap")
    action = server.create_image().action
    seen = set()
    while action.status == "running":
        seen.add(action.progress)
        time.sleep(0.05)
        action.reload()
    assert len(seen) >= 2 and max(seen) < 100
    assert action.progress == 100


def test_action_error_fault(client: hcloud.Client, sandbox: Sandbox) -> None:
    server = running(client, "fails")
    sandbox.inject(
        "action_error", command="stop_server", code="server_error", message="hypervisor said no"
    )
    action = server.power_off()
    with pytest.raises(ActionFailedException) as exc:
        action.wait_until_finished()
    assert exc.value.action.error == {"code": "server_error", "message": "hypervisor said no"}
    assert client.servers.get_by_id(server.id).status == "running"


def test_create_action_error_leaves_server_off(client: hcloud.Client, sandbox: Sandbox) -> None:
    sandbox.inject("action_error", command="create_server", server_name="doomed")
    response = create(client, "doomed", wait=False)
    with pytest.raises(ActionFailedException):
        response.action.wait_until_finished()
    assert client.actions.get_by_id(response.next_actions[0].id).status == "error"
    assert client.servers.get_by_id(response.server.id).status == "off"


def test_server_never_boots(sandbox: Sandbox, validator: OpenApiValidator) -> None:
    client = validated_client(sandbox, validator, poll_max_retries=10)
    sandbox.inject("server_never_boots", server_name="zombie")
    response = create(client, "zombie", wait=False)
    response.action.wait_until_finished()
    with pytest.raises(ActionTimeoutException):
        response.next_actions[0].wait_until_finished()
    server = client.servers.get_by_id(response.server.id)
    assert server.status == "starting"
    assert sandbox.server(server.id)["cloud_init"] == "pending"
    server.delete().wait_until_finished()


def test_unsimulated_action_is_explicit(http: Http, client: hcloud.Client) -> None:
    server = create(client, "rescue", wait=False).server
    raw = http.post(f"/servers/{server.id}/actions/enable_rescue", json={})
    assert (raw.status_code, raw.json()["error"]["code"]) == (422, "unsupported_error")


def test_snapshot_finishes_after_its_server_is_deleted(client: hcloud.Client) -> None:
    server = running(client, "gone")
    result = server.create_image(description="orphan")
    server.delete()
    result.action.wait_until_finished()
    assert client.images.get_by_id(result.image.id).status == "available"
