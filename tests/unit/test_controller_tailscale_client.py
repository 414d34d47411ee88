"""The Tailscale adapter over httpx.MockTransport: OAuth caching, key shape, error classes."""

from __future__ import annotations

import json

import httpx
import pytest

from aura.controller import errors
from aura.controller.clients.tailscale import TailscaleAdapter


def _adapter(handler: object) -> TailscaleAdapter:
    return TailscaleAdapter(
        base_url="https://ts.test",
        client_id="kclient",
        client_secret="tskey-client-" + "verysecretvalue",
        transport=httpx.MockTransport(handler),  # type: ignore[arg-type]
        credentials_source="Secret aura/creds",
    )


async def test_token_is_cached_and_keys_are_single_use_preauthorized_tagged() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/api/v2/oauth/token":
            return httpx.Response(
                200, json={"access_token": "tskey-api-" + "x", "expires_in": 3600}
            )
        assert request.headers["Authorization"] == "Bearer tskey-api-x"
        if request.method == "POST":
            return httpx.Response(200, json={"id": "k1", "key": "tskey-auth-" + "k1-abcdef"})
        return httpx.Response(200, json={"devices": []})

    ts = _adapter(handler)
    key = await ts.create_auth_key(tags=["tag:b", "tag:a"], description="d", expiry_seconds=60)
    await ts.list_devices(hostname="h")
    assert key.id == "k1" and "tskey" not in repr(key)
    assert [r.url.path for r in seen].count("/api/v2/oauth/token") == 1
    body = json.loads(seen[1].content)
    create = body["capabilities"]["devices"]["create"]
    assert create == {
        "reusable": False,
        "ephemeral": False,
        "preauthorized": True,
        "tags": ["tag:a", "tag:b"],
    }
    await ts.aclose()


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (404, errors.NotFound),
        (429, errors.RateLimited),
        (503, errors.Retryable),
        (400, errors.InvalidRequest),
        (403, errors.InvalidCredentials),
    ],
)
async def test_errors_are_classified(status: int, error: type[Exception]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v2/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        return httpx.Response(status, json={"message": "nope"})

    with pytest.raises(error):
        await _adapter(handler).delete_device("n1")


async def test_rejected_oauth_client_names_where_it_came_from() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"message": "invalid client"})

    with pytest.raises(errors.InvalidCredentials) as info:
        await _adapter(handler).list_devices()
    assert "Secret aura/creds" in str(info.value)
    assert "verysecret" not in str(info.value)
