"""Firewalls applied by label selector, read back through `hcloud`: the servers a selector matches
are listed under `applied_to_resources`, as the real API lists them (hcloud-go and the Python
client expose them as `FirewallResource.applied_to_resources`)."""

from __future__ import annotations

import hcloud
import pytest
from hcloud import APIException
from hcloud.firewalls import FirewallResource, FirewallResourceLabelSelector

from tests.sandbox.hetzner_support import create


def _selector(selector: str) -> FirewallResource:
    return FirewallResource(
        type="label_selector", label_selector=FirewallResourceLabelSelector(selector=selector)
    )


def _matched(client: hcloud.Client, firewall_id: int) -> dict[str, list[int]]:
    firewall = client.firewalls.get_by_id(firewall_id)
    return {
        str(target.label_selector.selector): sorted(
            r.server.id for r in target.applied_to_resources or [] if r.server is not None
        )
        for target in firewall.applied_to
        if target.type == "label_selector" and target.label_selector is not None
    }


def test_label_selector_lists_the_matched_servers(client: hcloud.Client) -> None:
    web = create(client, "web-1", wait=False, labels={"role": "web"}).server
    also_web = create(client, "web-2", wait=False, labels={"role": "web", "env": "prod"}).server
    create(client, "db-1", wait=False, labels={"role": "db"})
    fw = client.firewalls.create(name="by-label", resources=[_selector("role=web")]).firewall
    assert _matched(client, fw.id) == {"role=web": sorted([web.id, also_web.id])}

    client.firewalls.apply_to_resources(fw, [_selector("env=prod")])
    assert _matched(client, fw.id) == {
        "role=web": sorted([web.id, also_web.id]),
        "env=prod": [also_web.id],
    }
    # A server created later is matched too, and a deleted one no longer is.
    late = create(client, "web-3", wait=False, labels={"role": "web"}).server
    web.delete().wait_until_finished()
    assert _matched(client, fw.id)["role=web"] == sorted([also_web.id, late.id])
    listed = client.firewalls.get_all(name="by-label")[0]
    assert any(t.applied_to_resources for t in listed.applied_to)

    client.firewalls.remove_from_resources(fw, [_selector("role=web")])
    assert _matched(client, fw.id) == {"env=prod": [also_web.id]}


def test_malformed_label_selector_is_invalid_input(client: hcloud.Client) -> None:
    with pytest.raises(APIException) as exc:
        client.firewalls.create(name="broken", resources=[_selector("role in (web")])
    assert exc.value.code == "invalid_input"
    assert client.firewalls.get_by_name("broken") is None  # nothing was created
