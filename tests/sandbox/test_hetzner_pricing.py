"""Prices and traffic: `GET /v1/pricing` and the server types' per-location prices come from one
table a test sets through the admin API; servers count traffic. hcloud-python 2.27 has no
pricing client, so `/pricing` goes through the official client's own `request()`; every response
is validated against the Hetzner OpenAPI spec."""

from __future__ import annotations

from typing import Any

import hcloud

from aura_sandbox.harness import Sandbox
from tests.sandbox.conftest import admin
from tests.sandbox.hetzner_support import running

TB = 1024**4


def _price(prices: list[dict[str, Any]], location: str) -> dict[str, Any]:
    return next(p for p in prices if p["location"] == location)


def test_pricing_has_the_real_shape(client: hcloud.Client) -> None:
    pricing = client.request("GET", "/pricing")["pricing"]
    assert pricing["currency"] == "EUR" and pricing["vat_rate"] == "19.00"
    assert pricing["image"]["price_per_gb_month"]["net"] == "0.0110000000"
    assert pricing["image"]["price_per_gb_month"]["gross"] == "0.0130900000"
    ipv4 = next(p for p in pricing["primary_ips"] if p["type"] == "ipv4")
    assert _price(ipv4["prices"], "fsn1")["price_monthly"]["net"] == "0.5000000000"
    cx22 = next(st for st in pricing["server_types"] if st["name"] == "cx22")
    fsn1 = _price(cx22["prices"], "fsn1")
    assert fsn1["price_monthly"]["net"] == "3.7900000000"
    assert fsn1["price_hourly"]["net"] == "0.0060000000"
    assert fsn1["included_traffic"] == 20 * TB
    # The same figures as the server type itself.
    assert client.server_types.get_by_name("cx22").prices == cx22["prices"]


def test_a_test_sets_the_price_table(client: hcloud.Client, sandbox: Sandbox) -> None:
    server = running(client, "priced")
    changed = admin(
        sandbox,
        "PUT",
        "/pricing",
        json={
            "image_per_gb_month": 0.02,
            "primary_ipv4_monthly": 0.6,
            "server_types": {"cx22": {"fsn1": {"monthly": 4.5}}},
            "traffic": {"fsn1": {"included_tb": 1, "per_tb": 2.5}},
        },
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["servers"]["cx22"]["fsn1"] == {"monthly": 4.5, "hourly": 0.0071}

    pricing = client.request("GET", "/pricing")["pricing"]
    assert pricing["image"]["price_per_gb_month"]["net"] == "0.0200000000"
    ipv4 = next(p for p in pricing["primary_ips"] if p["type"] == "ipv4")
    assert _price(ipv4["prices"], "fsn1")["price_monthly"]["net"] == "0.6000000000"
    listed = _price(client.server_types.get_by_name("cx22").prices, "fsn1")
    assert listed["price_monthly"]["net"] == "4.5000000000"
    assert listed["price_per_tb_traffic"]["net"] == "2.5000000000"
    assert listed["included_traffic"] == TB
    # Other locations keep theirs, and the server's embedded type follows the table.
    nbg1 = _price(client.server_types.get_by_name("cx22").prices, "nbg1")
    assert nbg1["price_monthly"]["net"] == "3.7900000000"
    reloaded = client.servers.get_by_id(server.id)
    assert _price(reloaded.server_type.prices, "fsn1")["price_monthly"]["net"] == "4.5000000000"
    assert reloaded.included_traffic == TB

    # Bad input names the field, and nothing of it is applied.
    for body, field in (
        ({"server_types": {"cx99": {}}}, "server_types.cx99"),
        ({"server_types": {"cx22": {"ash": {"monthly": 1}}}}, "server_types.cx22.ash"),
        ({"image_per_gb_month": -1, "vat_rate": 0}, "image_per_gb_month"),
        ({"traffic": {"fsn1": {"free": 3}}}, "traffic.fsn1.free"),
    ):
        refused = admin(sandbox, "PUT", "/pricing", json=body)
        assert refused.status_code == 422 and field in refused.json()["error"]
    assert admin(sandbox, "GET", "/pricing").json()["vat_rate"] == 19.0

    assert admin(sandbox, "DELETE", "/pricing").status_code == 200
    restored = _price(client.server_types.get_by_name("cx22").prices, "fsn1")
    assert restored["price_monthly"]["net"] == "3.7900000000"


def test_servers_count_traffic(client: hcloud.Client, sandbox: Sandbox) -> None:
    server = running(client, "chatty")
    assert (server.outgoing_traffic, server.ingoing_traffic) == (0, 0)
    assert server.included_traffic == 20 * TB
    url = f"/servers/{server.id}/traffic"
    assert admin(sandbox, "POST", url, json={"outgoing": 5 * TB, "ingoing": 100}).status_code == 200
    view = admin(sandbox, "POST", url, json={"outgoing": 2 * TB}).json()
    assert view["outgoing_traffic"] == 7 * TB
    reloaded = client.servers.get_by_id(server.id)
    assert (reloaded.outgoing_traffic, reloaded.ingoing_traffic) == (7 * TB, 100)
    admin(sandbox, "POST", url, json={"outgoing": 21 * TB, "mode": "set"})
    assert client.servers.get_by_id(server.id).outgoing_traffic == 21 * TB
    refused = admin(sandbox, "POST", url, json={"outgoing": -1})
    assert refused.status_code == 422 and "outgoing" in refused.json()["error"]
    assert admin(sandbox, "POST", "/servers/1/traffic", json={}).status_code == 404
