"""Conformance: servers through the official hcloud client (create, get, update, delete)."""

from __future__ import annotations

import hcloud
import pytest
from hcloud import APIException
from hcloud.firewalls import FirewallRule
from hcloud.images import Image
from hcloud.server_types import ServerType
from hcloud.servers.domain import ServerCreatePublicNetwork

from aura_sandbox.harness import Sandbox
from tests.polling import wait_for
from tests.sandbox.conftest import Http
from tests.sandbox.hetzner_support import USER_DATA, create, running

PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGYLoVfhGIl99RW48Z9JKL3DzfmCdJAi7opmp+8xXqq4 ops"


def test_create_returns_all_four_keys_and_boots(client: hcloud.Client, sandbox: Sandbox) -> None:
    key = client.ssh_keys.create(name="ops", public_key=PUBLIC_KEY)
    fw = client.firewalls.create(
        name="agents",
        rules=[FirewallRule(direction="in", protocol="tcp", port="22", source_ips=["0.0.0.0/0"])],
    ).firewall
    response = create(
        client,
        "agent-1",
        wait=False,
        user_data=USER_DATA,
        labels={"aura.dev/agent": "a1", "managed-by": "aura"},
        ssh_keys=[key],
        firewalls=[fw],
    )
    server = response.server
    assert server.status == "initializing"
    assert response.action.command == "create_server"
    assert response.action.status == "running"
    assert response.action.progress == 0
    assert [a.command for a in response.next_actions] == ["start_server", "apply_firewall"]
    assert response.root_password is None  # SSH keys given
    assert server.public_net.primary_ipv4.id and server.public_net.primary_ipv6.id
    assert server.labels == {"aura.dev/agent": "a1", "managed-by": "aura"}

    assert sandbox.server(server.id)["cloud_init"] == "pending"
    response.action.wait_until_finished()
    for action in response.next_actions:
        action.wait_until_finished()
    server.reload()
    assert server.status == "running"
    assert server.public_net.firewalls[0].firewall.id == fw.id
    view = sandbox.server(server.id)
    assert view["user_data"] == USER_DATA
    assert view["cloud_init"] == "running"
    assert view["configured"] is False
    wait_for(lambda: sandbox.server(server.id)["cloud_init"] == "done")


def test_root_password_without_ssh_keys(client: hcloud.Client) -> None:
    response = create(client, "pw", wait=False)
    assert isinstance(response.root_password, str) and len(response.root_password) >= 12


def test_status_goes_initializing_starting_running(client: hcloud.Client) -> None:
    response = create(client, "steps", wait=False)
    response.action.wait_until_finished()
    server = client.servers.get_by_id(response.server.id)
    assert server.status == "starting"
    assert server.locked is True
    response.next_actions[0].wait_until_finished()
    server.reload()
    assert (server.status, server.locked) == ("running", False)


def test_start_after_create_false_stays_off(client: hcloud.Client) -> None:
    response = create(client, "cold", start_after_create=False)
    assert response.next_actions == []
    assert client.servers.get_by_id(response.server.id).status == "off"


def test_arm_server_type_gets_arm_image(client: hcloud.Client) -> None:
    server = running(client, "arm", server_type=ServerType(name="cax11"))
    assert server.image.architecture == "arm"
    assert server.server_type.architecture == "arm"


def test_ipv6_only(client: hcloud.Client) -> None:
    response = create(
        client,
        "v6",
        wait=False,
        public_net=ServerCreatePublicNetwork(enable_ipv4=False, enable_ipv6=True),
    )
    assert response.server.public_net.ipv4 is None
    assert response.server.public_net.ipv6.ip.endswith("::/64")


@pytest.mark.parametrize(
    ("name", "field"),
    [("bad_name", "name"), ("-leading", "name"), ("a" * 64, "name"), ("", "name")],
)
def test_invalid_names_are_invalid_input(client: hcloud.Client, name: str, field: str) -> None:
    with pytest.raises(APIException) as exc:
        create(client, name)
    assert exc.value.code == "invalid_input"
    assert exc.value.details["fields"][0]["name"] == field
    assert exc.value.details["fields"][0]["messages"] == ["Name must be a valid hostname."]


def test_duplicate_name_is_uniqueness_error(client: hcloud.Client, http: Http) -> None:
    create(client, "twin", wait=False)
    with pytest.raises(APIException) as exc:
        create(client, "twin", wait=False)
    assert exc.value.code == "uniqueness_error"
    assert exc.value.message == "server name is already used"
    raw = http.post("/servers", json={"name": "twin", "server_type": "cx22", "image": "debian-12"})
    assert raw.status_code == 409


def test_user_data_limit(client: hcloud.Client, http: Http) -> None:
    create(client, "fits", wait=False, user_data="x" * 32768)
    with pytest.raises(APIException) as exc:
        create(client, "too-big", wait=False, user_data="x" * 32769)
    assert exc.value.code == "invalid_input"
    assert exc.value.details["fields"] == [
        {"name": "user_data", "messages": ["Length must be between 0 and 32768."]}
    ]
    raw = http.post(
        "/servers",
        json={"name": "big", "server_type": "cx22", "image": "debian-12", "user_data": "y" * 40000},
    )
    assert raw.status_code == 422


@pytest.mark.parametrize(
    "labels",
    [{"bad key!": "x"}, {"k": "bad value!"}, {"hetzner.cloud/x": "y"}, {"k": "v" * 64}],
)
def test_invalid_labels(client: hcloud.Client, labels: dict[str, str]) -> None:
    with pytest.raises(APIException) as exc:
        create(client, "labels", wait=False, labels=labels)
    assert exc.value.code == "invalid_input"


def test_unknown_references(client: hcloud.Client, http: Http) -> None:
    with pytest.raises(APIException) as exc:
        create(client, "x1", server_type=ServerType(name="cx999"))
    assert exc.value.code == "invalid_input"
    with pytest.raises(APIException) as exc:
        create(client, "x2", image=Image(name="windows-11"))
    assert exc.value.code == "invalid_input"
    raw = http.post(
        "/servers",
        json={"name": "x3", "server_type": "cx22", "image": "debian-12", "location": "ash"},
    )
    assert (raw.status_code, raw.json()["error"]["code"]) == (412, "resource_unavailable")
    raw = http.post("/servers", json={"name": "x4"})
    assert raw.status_code == 422
    raw = http.post("/servers", data="{not json", headers={"Content-Type": "application/json"})
    assert (raw.status_code, raw.json()["error"]["code"]) == (400, "json_error")


def test_get_update_delete(client: hcloud.Client) -> None:
    server = create(client, "mutable", wait=False, labels={"a": "1"}).server
    updated = client.servers.update(server, name="renamed", labels={"b": "2"})
    assert (updated.name, updated.labels) == ("renamed", {"b": "2"})
    assert client.servers.get_by_name("renamed").id == server.id
    assert client.servers.get_by_name("mutable") is None
    other = create(client, "other", wait=False).server
    with pytest.raises(APIException) as exc:
        client.servers.update(other, name="renamed")
    assert exc.value.code == "uniqueness_error"

    action = client.servers.delete(server)
    assert action.command == "delete_server"
    with pytest.raises(APIException) as exc:
        client.servers.get_by_id(server.id)
    assert exc.value.code == "not_found"
    action.wait_until_finished()
    assert action.status == "success"
    # The name is free again at once.
    create(client, "renamed", wait=False)


def test_delete_protection(client: hcloud.Client) -> None:
    server = create(client, "keep", wait=False).server
    client.servers.change_protection(server, delete=True).wait_until_finished()
    with pytest.raises(APIException) as exc:
        client.servers.delete(server)
    assert exc.value.code == "protected"
    client.servers.change_protection(server, delete=False)
    client.servers.delete(server)


def test_delete_while_initializing(client: hcloud.Client) -> None:
    server = create(client, "early", wait=False).server
    client.servers.delete(server).wait_until_finished()
    assert client.servers.get_all(name="early") == []
