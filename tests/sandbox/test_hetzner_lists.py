"""Conformance: list filters, the label selector grammar, sorting and pagination."""

from __future__ import annotations

import hcloud
import pytest
from hcloud import APIException

from aura_sandbox.harness import Sandbox
from aura_sandbox.lifecycle import create_server
from aura_sandbox.world import World
from tests.sandbox.conftest import Http
from tests.sandbox.hetzner_support import create


def _fill(sandbox: Sandbox, count: int) -> None:
    """Many servers straight in the world: listing is what is under test, not creation."""

    def fill(world: World) -> None:
        for i in range(count):
            create_server(
                world,
                name=f"node-{i:03d}",
                server_type="cx22",
                location="fsn1",
                image_id=161547269,
                labels={
                    "tier": ("web", "db", "cache")[i % 3],
                    "team": f"t{i % 2}",
                    **({"canary": ""} if i % 10 == 0 else {}),
                },
                user_data=None,
                ssh_keys=[],
                firewalls=[],
                start_after_create=True,
            )

    sandbox.call(fill)


SELECTORS = [
    ("tier=web", lambda i: i % 3 == 0),
    ("tier==web", lambda i: i % 3 == 0),
    ("tier!=web", lambda i: i % 3 != 0),
    ("canary", lambda i: i % 10 == 0),
    ("!canary", lambda i: i % 10 != 0),
    ("tier in (web,db)", lambda i: i % 3 in (0, 1)),
    ("tier notin (web,db)", lambda i: i % 3 == 2),
    ("tier=web,team=t0", lambda i: i % 3 == 0 and i % 2 == 0),
    ("tier in (cache), !canary, team!=t1", lambda i: i % 3 == 2 and i % 10 and i % 2 == 0),
    ("missing!=x", lambda i: True),
    ("missing", lambda i: False),
]


@pytest.mark.parametrize(("selector", "expected"), SELECTORS, ids=[s for s, _ in SELECTORS])
def test_label_selector_grammar_across_pages(
    client: hcloud.Client, sandbox: Sandbox, selector: str, expected: object
) -> None:
    _fill(sandbox, 120)
    names = sorted(s.name for s in client.servers.get_all(label_selector=selector))
    assert names == [f"node-{i:03d}" for i in range(120) if expected(i)]  # type: ignore[operator]


@pytest.mark.parametrize("selector", ["tier in (a", "tier in ()", "=x", "a b c", "k==v=w"])
def test_malformed_selector_is_invalid_input(client: hcloud.Client, selector: str) -> None:
    with pytest.raises(APIException) as exc:
        client.servers.get_all(label_selector=selector)
    assert exc.value.code == "invalid_input"


def test_pagination_meta_and_link_header(sandbox: Sandbox, http: Http) -> None:
    _fill(sandbox, 60)
    first = http.get("/servers")
    meta = first.json()["meta"]["pagination"]
    assert meta == {
        "page": 1,
        "per_page": 25,
        "previous_page": None,
        "next_page": 2,
        "last_page": 3,
        "total_entries": 60,
    }
    assert len(first.json()["servers"]) == 25
    links = first.headers["Link"]
    assert 'page=2&per_page=25>; rel="next"' in links and 'rel="last"' in links
    assert 'rel="prev"' not in links

    second = http.get("/servers", params={"page": 2, "per_page": 25, "label_selector": "team"})
    assert second.json()["meta"]["pagination"]["previous_page"] == 1
    assert "label_selector=team" in second.headers["Link"]

    last = http.get("/servers", params={"page": 3})
    assert len(last.json()["servers"]) == 10
    assert last.json()["meta"]["pagination"]["next_page"] is None
    assert 'rel="next"' not in last.headers["Link"]

    capped = http.get("/servers", params={"per_page": 500})
    assert capped.json()["meta"]["pagination"]["per_page"] == 50
    assert len(capped.json()["servers"]) == 50

    beyond = http.get("/servers", params={"page": 9})
    assert beyond.json()["servers"] == []
    assert http.get("/servers", params={"page": 0}).status_code == 422


def test_get_all_follows_next_page(client: hcloud.Client, sandbox: Sandbox) -> None:
    _fill(sandbox, 130)
    assert len(client.servers.get_all()) == 130
    counts = sandbox.request_counts()
    assert counts["GET /v1/servers"] == 3  # hcloud pages with per_page=50


def test_sorting(sandbox: Sandbox, http: Http) -> None:
    _fill(sandbox, 12)
    by_name_desc = [
        s["name"] for s in http.get("/servers", params={"sort": "name:desc"}).json()["servers"]
    ]
    assert by_name_desc == sorted(by_name_desc, reverse=True)
    by_id = [s["id"] for s in http.get("/servers", params={"sort": "id:desc"}).json()["servers"]]
    assert by_id == sorted(by_id, reverse=True)
    response = http.get("/servers", params=[("sort", "created:desc"), ("sort", "name")])
    assert response.status_code == 200
    assert http.get("/servers", params={"sort": "color"}).status_code == 422


def test_name_and_status_filters(client: hcloud.Client) -> None:
    create(client, "up", wait=True)
    create(client, "down", start_after_create=False)
    assert [s.name for s in client.servers.get_all(name="up")] == ["up"]
    assert client.servers.get_all(name="nope") == []
    assert [s.name for s in client.servers.get_all(status=["off"])] == ["down"]
    assert {s.name for s in client.servers.get_all(status=["off", "running"])} == {"up", "down"}
    with pytest.raises(APIException) as exc:
        client.servers.get_all(status=["sleeping"])
    assert exc.value.code == "invalid_input"
