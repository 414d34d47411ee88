"""Conformance: server types, locations, datacenters, images, SSH keys and firewalls."""

from __future__ import annotations

import hcloud
import pytest
from hcloud import APIException
from hcloud.firewalls import FirewallResource, FirewallRule

from tests.sandbox.conftest import Http
from tests.sandbox.hetzner_support import create

KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGYLoVfhGIl99RW48Z9JKL3DzfmCdJAi7opmp+8xXqq4 a"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINV0KeyRQLmSpCC1KBjBOw2H+WBj+lGJZUXy/1zCmQPy b"


def test_server_types_with_prices(client: hcloud.Client) -> None:
    names = {st.name for st in client.server_types.get_all()}
    assert {"cx22", "cx32", "cpx11", "cpx21", "cax11", "ccx13"} <= names
    cx22 = client.server_types.get_by_name("cx22")
    assert (cx22.cores, cx22.memory, cx22.disk, cx22.architecture) == (2, 4.0, 40, "x86")
    fsn1 = next(p for p in cx22.prices if p["location"] == "fsn1")
    assert fsn1["price_monthly"]["net"] == "3.7900000000"
    assert fsn1["price_monthly"]["gross"] == "4.5101000000"
    assert {loc.location.name for loc in cx22.locations} == {"fsn1", "nbg1", "hel1"}
    assert client.server_types.get_by_id(cx22.id).name == "cx22"
    assert client.server_types.get_by_name("cx999") is None


def test_locations_and_datacenters(client: hcloud.Client, http: Http) -> None:
    locations = {loc.name: loc for loc in client.locations.get_all()}
    assert set(locations) == {"fsn1", "nbg1", "hel1", "ash", "hil", "sin"}
    assert locations["ash"].network_zone == "us-east"
    assert client.locations.get_by_id(locations["hel1"].id).city == "Helsinki"
    datacenters = http.get("/datacenters").json()["datacenters"]
    assert {dc["location"]["name"] for dc in datacenters} == set(locations)
    assert http.get("/locations/999").json()["error"]["code"] == "not_found"


def test_images_by_name_and_architecture(client: hcloud.Client, http: Http) -> None:
    x86 = client.images.get_by_name_and_architecture("ubuntu-24.04", "x86", include_deprecated=True)
    arm = client.images.get_by_name_and_architecture("ubuntu-24.04", "arm")
    assert x86.id != arm.id and x86.type == "system" and arm.architecture == "arm"
    assert client.images.get_by_id(x86.id).os_flavor == "ubuntu"
    assert http.get("/images", params={"include_deprecated": "maybe"}).status_code == 422
    assert client.images.get_all(type=["snapshot"]) == []


def test_ssh_keys(client: hcloud.Client) -> None:
    key = client.ssh_keys.create(name="ops", public_key=KEY_A, labels={"team": "ops"})
    assert key.fingerprint.count(":") == 15
    assert client.ssh_keys.get_by_name("ops").id == key.id
    assert client.ssh_keys.get_by_fingerprint(key.fingerprint).id == key.id
    assert [k.id for k in client.ssh_keys.get_all(label_selector="team=ops")] == [key.id]
    with pytest.raises(APIException) as exc:
        client.ssh_keys.create(name="ops2", public_key=KEY_A)
    assert exc.value.code == "uniqueness_error"
    with pytest.raises(APIException) as exc:
        client.ssh_keys.create(name="ops", public_key=KEY_B)
    assert exc.value.code == "uniqueness_error"
    with pytest.raises(APIException) as exc:
        client.ssh_keys.create(name="junk", public_key="not a key")
    assert exc.value.code == "invalid_input"
    client.ssh_keys.update(key, name="ops-renamed")
    server = create(client, "keyed", wait=False, ssh_keys=[client.ssh_keys.get_by_id(key.id)])
    assert server.root_password is None
    assert client.ssh_keys.delete(key) is True
    assert client.ssh_keys.get_by_name("ops-renamed") is None


def test_firewalls(client: hcloud.Client) -> None:
    server = create(client, "walled", wait=False).server
    rules = [FirewallRule(direction="in", protocol="tcp", port="443", source_ips=["::/0"])]
    created = client.firewalls.create(
        name="web",
        rules=rules,
        labels={"role": "web"},
        resources=[FirewallResource(type="server", server=server)],
    )
    fw = created.firewall
    assert fw.rules[0].port == "443"
    assert client.firewalls.get_by_name("web").id == fw.id
    assert client.servers.get_by_id(server.id).public_net.firewalls[0].firewall.id == fw.id
    assert [f.id for f in client.firewalls.get_all(label_selector="role")] == [fw.id]
    with pytest.raises(APIException) as exc:
        client.firewalls.create(name="web")
    assert exc.value.code == "uniqueness_error"
    with pytest.raises(APIException) as exc:
        client.firewalls.delete(fw)
    assert exc.value.code == "resource_in_use"
    server.delete().wait_until_finished()
    client.firewalls.update(fw, name="web2")
    assert client.firewalls.delete(fw) is True


def test_firewall_actions(client: hcloud.Client, http: Http) -> None:
    server = create(client, "guarded").server
    fw = client.firewalls.create(name="late").firewall
    actions = client.firewalls.apply_to_resources(
        fw, [FirewallResource(type="server", server=server)]
    )
    assert [a.command for a in actions] == ["apply_firewall"]
    for action in actions:
        action.wait_until_finished()
    assert [f.firewall.id for f in client.servers.get_by_id(server.id).public_net.firewalls] == [
        fw.id
    ]
    with pytest.raises(APIException) as exc:
        client.firewalls.apply_to_resources(fw, [FirewallResource(type="server", server=server)])
    assert exc.value.code == "firewall_already_applied"
    rules = [FirewallRule(direction="in", protocol="udp", port="41641", source_ips=["0.0.0.0/0"])]
    commands = [a.command for a in client.firewalls.set_rules(fw, rules)]
    assert commands == ["set_firewall_rules", "apply_firewall"]
    assert client.firewalls.get_by_id(fw.id).rules[0].port == "41641"
    removed = client.firewalls.remove_from_resources(
        fw, [FirewallResource(type="server", server=server)]
    )
    assert [a.command for a in removed] == ["remove_firewall"]
    assert client.servers.get_by_id(server.id).public_net.firewalls == []
    listed = client.firewalls.get_actions(fw)
    assert {a.command for a in listed} == {
        "apply_firewall",
        "set_firewall_rules",
        "remove_firewall",
    }
    assert client.firewalls.actions.get_by_id(listed[0].id).id == listed[0].id
    assert http.get("/firewalls/actions", params={"status": "running"}).status_code == 200
    assert client.firewalls.delete(fw) is True


def test_image_protection_and_actions(client: hcloud.Client) -> None:
    server = create(client, "imaged").server
    result = server.create_image(description="protected")
    result.action.wait_until_finished()
    image = client.images.get_by_id(result.image.id)
    client.images.change_protection(image, delete=True).wait_until_finished()
    with pytest.raises(APIException) as exc:
        client.images.delete(image)
    assert exc.value.code == "protected"
    commands = {a.command for a in client.images.get_actions(image)}
    assert commands == {"create_image", "change_protection"}
    assert client.images.actions.get_all()
    client.images.change_protection(image, delete=False)
    assert client.images.delete(image) is True
