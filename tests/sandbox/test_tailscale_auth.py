"""OAuth client credentials, access tokens, scopes and the error envelope of the fake API."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from tests.sandbox.tailscale_support import TailscaleSandbox, tailscale_sandbox

FORBIDDEN = "calling actor does not have enough permissions to perform this function"


@pytest.fixture
async def ts() -> AsyncIterator[TailscaleSandbox]:
    async with tailscale_sandbox() as sandbox:
        yield sandbox


def basic(user: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


async def test_token_with_secret_in_form(ts: TailscaleSandbox) -> None:
    r = await ts.http.post(
        "/api/v2/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": ts.config.tailscale_client_id,
            "client_secret": ts.config.tailscale_client_secret,
        },
    )
    assert r.status_code == 200
    body = r.json()
    assert body["access_token"].startswith("tskey-api-")
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "auth_keys devices:core"
    assert body["tags"] == "tag:aura-agent tag:aura"


async def test_token_with_basic_auth_like_golang_oauth2(ts: TailscaleSandbox) -> None:
    r = await ts.http.post(
        "/api/v2/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic(ts.config.tailscale_client_id, ts.config.tailscale_client_secret),
    )
    assert r.status_code == 200
    token = r.json()["access_token"]
    devices = await ts.http.get(
        "/api/v2/tailnet/-/devices", headers={"Authorization": f"Bearer {token}"}
    )
    assert devices.status_code == 200
    assert devices.json() == {"devices": []}


async def test_client_is_identified_by_its_secret_alone(ts: TailscaleSandbox) -> None:
    # feature/oauthkey sends a placeholder client id; the real server ignores it.
    r = await ts.http.post(
        "/api/v2/oauth/token",
        data={"client_id": "some-client-id", "client_secret": ts.config.tailscale_client_secret},
    )
    assert r.status_code == 200


@pytest.mark.parametrize("secret", ["tskey-client-" + "wrong", ""])
async def test_bad_secret_is_401_in_both_styles(ts: TailscaleSandbox, secret: str) -> None:
    form = await ts.http.post(
        "/api/v2/oauth/token",
        data={"client_id": ts.config.tailscale_client_id, "client_secret": secret},
    )
    header = await ts.http.post(
        "/api/v2/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic(ts.config.tailscale_client_id, secret),
    )
    for r in (form, header):
        assert r.status_code == 401
        assert r.json() == {"message": "API token invalid"}


async def test_unsupported_grant_type_is_400(ts: TailscaleSandbox) -> None:
    r = await ts.http.post(
        "/api/v2/oauth/token",
        data={"grant_type": "password", "client_secret": ts.config.tailscale_client_secret},
    )
    assert r.status_code == 400
    assert "grant_type" in r.json()["message"]


async def test_scope_the_client_lacks_is_403(ts: TailscaleSandbox) -> None:
    r = await ts.http.post(
        "/api/v2/oauth/token",
        data={"client_secret": ts.config.tailscale_client_secret, "scope": "auth_keys all"},
    )
    assert r.status_code == 403
    assert r.json() == {"message": 'OAuth client cannot grant scopes "all"'}


async def test_narrow_scope_limits_the_token(ts: TailscaleSandbox) -> None:
    token = await ts.token(scope="devices:core:read")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await ts.http.get("/api/v2/tailnet/-/devices", headers=headers)).status_code == 200
    r = await ts.http.post(
        "/api/v2/tailnet/-/keys",
        headers=headers,
        json={"capabilities": {"devices": {"create": {"tags": ["tag:aura-agent"]}}}},
    )
    assert r.status_code == 403
    assert r.json() == {"message": FORBIDDEN}
    r = await ts.http.get("/api/v2/tailnet/-/keys", headers=headers)
    assert r.status_code == 403


async def test_comma_separated_scopes_as_seen_in_the_wild(ts: TailscaleSandbox) -> None:
    r = await ts.http.post(
        "/api/v2/oauth/token",
        data={
            "client_secret": ts.config.tailscale_client_secret,
            "scope": "auth_keys,devices:core",
            "tags": "tag:aura-agent",
        },
    )
    assert r.status_code == 200
    assert r.json()["scope"] == "auth_keys devices:core"
    assert r.json()["tags"] == "tag:aura-agent"


async def test_token_tags_must_belong_to_the_client(ts: TailscaleSandbox) -> None:
    r = await ts.http.post(
        "/api/v2/oauth/token",
        data={"client_secret": ts.config.tailscale_client_secret, "tags": "tag:prod"},
    )
    assert r.status_code == 400
    assert r.json() == {"message": "requested tags [tag:prod] are invalid or not permitted"}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer tskey-api-nope"}, {"Authorization": "Token abc"}],
    ids=["missing", "unknown", "other-scheme"],
)
async def test_calls_without_a_valid_token_are_401(
    ts: TailscaleSandbox, headers: dict[str, str]
) -> None:
    r = await ts.http.get("/api/v2/tailnet/-/devices", headers=headers)
    assert r.status_code == 401
    assert r.json() == {"message": "API token invalid"}


async def test_token_as_basic_user_name_with_empty_password(ts: TailscaleSandbox) -> None:
    token = await ts.token()
    r = await ts.http.get("/api/v2/tailnet/-/keys", headers=basic(token, ""))
    assert r.status_code == 200
    assert r.json() == {"keys": []}


async def test_token_expires_after_an_hour(ts: TailscaleSandbox) -> None:
    token = await ts.token()
    headers = {"Authorization": f"Bearer {token}"}
    real_clock = ts.tailnet.wall_clock
    ts.tailnet.wall_clock = lambda: real_clock() + timedelta(seconds=3599)
    assert (await ts.http.get("/api/v2/tailnet/-/devices", headers=headers)).status_code == 200
    ts.tailnet.wall_clock = lambda: real_clock() + timedelta(seconds=3601)
    r = await ts.http.get("/api/v2/tailnet/-/devices", headers=headers)
    assert r.status_code == 401
    assert r.json() == {"message": "API token invalid"}


async def test_client_secret_is_not_an_access_token(ts: TailscaleSandbox) -> None:
    headers = {"Authorization": f"Bearer {ts.config.tailscale_client_secret}"}
    r = await ts.http.get("/api/v2/tailnet/-/devices", headers=headers)
    assert r.status_code == 403
    assert r.json() == {"message": FORBIDDEN}


async def test_personal_api_key_may_create_untagged_keys(ts: TailscaleSandbox) -> None:
    api_key = "tskey-api-" + "kPersonalCNTRL-secret"
    ts.tailnet.add_api_key(api_key, user="alice@example.com")
    headers = {"Authorization": f"Bearer {api_key}"}
    r = await ts.http.post(
        "/api/v2/tailnet/-/keys", headers=headers, json={"capabilities": {"devices": {}}}
    )
    assert r.status_code == 200, r.text
    assert r.json()["capabilities"]["devices"]["create"]["tags"] == []
    # Keys are per owner: the OAuth client does not see the user's key.
    assert (await ts.api.get("/api/v2/tailnet/-/keys")).json() == {"keys": []}


async def test_unknown_tailnet_and_unknown_route_are_404(ts: TailscaleSandbox) -> None:
    r = await ts.api.get("/api/v2/tailnet/someone-else.example/devices")
    assert r.status_code == 404
    assert r.json() == {"message": "tailnet not found"}
    named = await ts.api.get(f"/api/v2/tailnet/{ts.config.tailscale_tailnet}/devices")
    assert named.status_code == 200
    r = await ts.api.get("/api/v2/nothing/here")
    assert r.status_code == 404
    assert r.json() == {"message": "not found"}


async def test_injected_faults_use_the_tailscale_envelope(ts: TailscaleSandbox) -> None:
    ts.world.faults.add("rate_limit", path="^/api/v2/tailnet/")
    r = await ts.api.get("/api/v2/tailnet/-/devices")
    assert r.status_code == 429
    assert set(r.json()) == {"message"}
    assert int(r.headers["Retry-After"]) > 0
    ts.world.faults.add("http_error", status=502, path="^/api/v2/")
    r = await ts.api.get("/api/v2/tailnet/-/keys")
    assert r.status_code == 502
    assert set(r.json()) == {"message"}
    assert (await ts.api.get("/api/v2/tailnet/-/keys")).status_code == 200
