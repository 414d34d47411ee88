"""Auth keys: create, read, list, delete, and the tag rule for keys minted with OAuth."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.sandbox.tailscale_support import TailscaleSandbox, tailscale_sandbox


@pytest.fixture
async def ts() -> AsyncIterator[TailscaleSandbox]:
    async with tailscale_sandbox() as sandbox:
        yield sandbox


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_create_returns_the_secret_once(ts: TailscaleSandbox) -> None:
    r = await ts.api.post(
        "/api/v2/tailnet/-/keys",
        json={
            "capabilities": {
                "devices": {
                    "create": {
                        "reusable": False,
                        "ephemeral": True,
                        "preauthorized": True,
                        "tags": ["tag:aura-agent"],
                    }
                }
            },
            "expirySeconds": 3600,
            "description": "agent-123",
        },
    )
    assert r.status_code == 200
    key = r.json()
    assert re.fullmatch(r"k[A-Za-z0-9]+CNTRL", key["id"])
    assert key["key"].startswith(f"tskey-auth-{key['id']}-")
    assert when(key["expires"]) - when(key["created"]) == timedelta(hours=1)
    assert (key["keyType"], key["expirySeconds"]) == ("auth", 3600)
    assert key["capabilities"] == {
        "devices": {
            "create": {
                "reusable": False,
                "ephemeral": True,
                "preauthorized": True,
                "tags": ["tag:aura-agent"],
            }
        }
    }
    assert key["description"] == "agent-123"
    assert key["invalid"] is False

    got = (await ts.api.get(f"/api/v2/tailnet/-/keys/{key['id']}")).json()
    assert "key" not in got
    assert got["capabilities"] == key["capabilities"]

    listed = (await ts.api.get("/api/v2/tailnet/-/keys")).json()
    assert listed == {"keys": [{"id": key["id"], "description": "agent-123"}]}
    full = (await ts.api.get("/api/v2/tailnet/-/keys", params={"all": "true"})).json()
    assert [k["id"] for k in full["keys"]] == [key["id"]]
    assert "key" not in full["keys"][0]


async def test_delete_revokes_and_a_second_delete_is_404(ts: TailscaleSandbox) -> None:
    key = await ts.create_key()
    r = await ts.api.delete(f"/api/v2/tailnet/-/keys/{key['id']}")
    assert r.status_code == 200
    assert r.content == b""
    got = (await ts.api.get(f"/api/v2/tailnet/-/keys/{key['id']}")).json()
    assert got["invalid"] is True
    assert "revoked" in got
    assert (await ts.api.get("/api/v2/tailnet/-/keys")).json() == {"keys": []}
    again = await ts.api.delete(f"/api/v2/tailnet/-/keys/{key['id']}")
    assert again.status_code == 404
    assert again.json() == {"message": "not found"}


async def test_unknown_key_is_404(ts: TailscaleSandbox) -> None:
    r = await ts.api.get("/api/v2/tailnet/-/keys/kNopeNope1CNTRL")
    assert r.status_code == 404
    assert r.json() == {"message": "not found"}


async def test_zero_expiry_means_the_90_day_default(ts: TailscaleSandbox) -> None:
    # The v2 Go client always sends expirySeconds, 0 when unset.
    key = await ts.create_key()
    r = await ts.api.post(
        "/api/v2/tailnet/-/keys",
        json={
            "capabilities": {"devices": {"create": {"tags": ["tag:aura-agent"]}}},
            "expirySeconds": 0,
            "description": "",
        },
    )
    assert r.status_code == 200
    for body in (key, r.json()):
        assert when(body["expires"]) - when(body["created"]) == timedelta(days=90)
        assert body["expirySeconds"] == 90 * 86400
    listed = (await ts.api.get(f"/api/v2/tailnet/-/keys/{key['id']}")).json()
    assert (listed["keyType"], listed["expirySeconds"]) == ("auth", 90 * 86400)


async def test_defaults_are_single_use_not_ephemeral_not_preauthorized(
    ts: TailscaleSandbox,
) -> None:
    key = await ts.create_key()
    create = key["capabilities"]["devices"]["create"]
    assert (create["reusable"], create["ephemeral"], create["preauthorized"]) == (
        False,
        False,
        False,
    )


@pytest.mark.parametrize(
    ("tags", "ok"),
    [
        (["tag:aura-agent"], True),  # owned by the client's tag:aura
        (["tag:aura", "tag:aura-agent"], True),  # exactly the client's tags
        (["tag:aura"], False),  # a strict subset of the client's own tags
        ([], False),  # tailnet-owned keys must be tagged
        (["tag:aura-agent", "tag:prod"], False),  # not the client's
        (["tag:unknown"], False),  # not in the policy at all
    ],
)
async def test_oauth_keys_need_tags_the_client_owns(
    ts: TailscaleSandbox, tags: list[str], ok: bool
) -> None:
    r = await ts.api.post(
        "/api/v2/tailnet/-/keys", json={"capabilities": {"devices": {"create": {"tags": tags}}}}
    )
    if ok:
        assert r.status_code == 200, r.text
        assert r.json()["capabilities"]["devices"]["create"]["tags"] == tags
    else:
        assert r.status_code == 400
        assert r.json() == {
            "message": f"requested tags [{' '.join(tags)}] are invalid or not permitted"
        }


async def test_missing_tags_field_is_the_same_error(ts: TailscaleSandbox) -> None:
    r = await ts.api.post("/api/v2/tailnet/-/keys", json={"capabilities": {"devices": {}}})
    assert r.status_code == 400
    assert r.json() == {"message": "requested tags [] are invalid or not permitted"}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"capabilities": {}},
        {"capabilities": {"devices": {"create": {"reusable": "yes"}}}},
        {"capabilities": {"devices": {"create": {"tags": "tag:aura-agent"}}}},
        {
            "capabilities": {"devices": {"create": {"tags": ["tag:aura-agent"]}}},
            "expirySeconds": 91 * 86400,
        },
        {
            "capabilities": {"devices": {"create": {"tags": ["tag:aura-agent"]}}},
            "expirySeconds": -5,
        },
        {
            "capabilities": {"devices": {"create": {"tags": ["tag:aura-agent"]}}},
            "description": "no/slashes",
        },
        {
            "capabilities": {"devices": {"create": {"tags": ["tag:aura-agent"]}}},
            "description": "x" * 51,
        },
    ],
    ids=[
        "no-capabilities",
        "no-devices",
        "non-bool",
        "tags-not-list",
        "too-long-expiry",
        "negative-expiry",
        "bad-description",
        "long-description",
    ],
)
async def test_invalid_create_bodies_are_400(ts: TailscaleSandbox, body: dict[str, Any]) -> None:
    r = await ts.api.post("/api/v2/tailnet/-/keys", json=body)
    assert r.status_code == 400
    assert isinstance(r.json()["message"], str)


async def test_invalid_json_is_400(ts: TailscaleSandbox) -> None:
    r = await ts.api.post(
        "/api/v2/tailnet/-/keys", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json() == {"message": "invalid JSON body"}


async def test_creating_an_oauth_client_needs_a_scope_we_lack(ts: TailscaleSandbox) -> None:
    r = await ts.api.post(
        "/api/v2/tailnet/-/keys",
        json={"keyType": "client", "scopes": ["all"], "tags": ["tag:aura"]},
    )
    assert r.status_code == 403


async def test_expired_key_reads_invalid_and_is_not_listed(ts: TailscaleSandbox) -> None:
    key = await ts.create_key(reusable=True)
    ts.tailnet.keys[key["id"]].expires = ts.world.now() - timedelta(seconds=1)
    got = (await ts.api.get(f"/api/v2/tailnet/-/keys/{key['id']}")).json()
    assert got["invalid"] is True
    assert "revoked" not in got
    assert (await ts.api.get("/api/v2/tailnet/-/keys")).json() == {"keys": []}


async def test_admin_views_never_show_secrets(ts: TailscaleSandbox) -> None:
    key = await ts.create_key()
    r = await ts.http.get("/admin/tailnet/keys")
    assert r.status_code == 200
    assert key["key"] not in r.text
    (summary,) = r.json()["keys"]
    assert summary["id"] == key["id"]
    assert summary["invalidReason"] is None
    assert summary["owner"] == "tailnet"
