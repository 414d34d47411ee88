"""Signed tokens: the algorithm itself, then customer scope on a real bridge and apiserver."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest

from aura.bridge import tokens
from aura.bridge.config import BridgeConfig
from tests.bridge.conftest import TOKEN, Bridge, checkout
from tests.bridge.test_status_api import set_phase
from tests.kube import Cluster

NEW = ("k2", "n" * 40)
OLD = ("k1", "o" * 40)
KEYS = (NEW, OLD)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def offline_mint(key: tuple[str, str], claims: dict[str, Any]) -> str:
    """The README's algorithm, written out independently of `aura.bridge.tokens`."""
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    payload = b64(json.dumps(claims).encode())  # spaces and key order differ from `mint`
    sig = hmac.new(key[1].encode(), f"aura1.{payload}".encode(), hashlib.sha256).digest()
    return f"aura1.{payload}.{b64(sig)}"


def test_round_trip_and_offline_algorithm() -> None:
    token = tokens.mint(KEYS, tokens.CUSTOMER_READ, customer="cus_A1", ttl=60)
    claims = tokens.verify(KEYS, token)
    assert (claims.scope, claims.customer, claims.kid) == ("customer:read", "cus_A1", "k2")
    assert abs(claims.expires - (time.time() + 60)) < 2
    offline = offline_mint(
        NEW, {"scope": "customer:read", "cus": "cus_B2", "kid": "k2", "exp": int(time.time()) + 60}
    )
    assert tokens.verify(KEYS, offline).customer == "cus_B2"


def test_expiry() -> None:
    token = tokens.mint(KEYS, tokens.CUSTOMER_READ, customer="cus_A1", ttl=60, now=1000)
    assert tokens.verify(KEYS, token, now=1059).customer == "cus_A1"
    with pytest.raises(tokens.TokenError, match="expired"):
        tokens.verify(KEYS, token, now=1060)
    forever = offline_mint(
        NEW, {"scope": "customer:read", "cus": "cus_A1", "kid": "k2", "exp": 2**40}
    )
    with pytest.raises(tokens.TokenError, match="lives longer"):
        tokens.verify(KEYS, forever)
    no_exp = offline_mint(NEW, {"scope": "customer:read", "cus": "cus_A1", "kid": "k2"})
    with pytest.raises(tokens.TokenError, match="no expiry"):
        tokens.verify(KEYS, no_exp)


def test_tampering() -> None:
    token = tokens.mint(KEYS, tokens.CUSTOMER_READ, customer="cus_A1")
    prefix, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["cus"] = "cus_B2"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    for bad in (
        f"{prefix}.{forged}.{sig}",  # another customer, old signature
        f"{prefix}.{payload}.{sig[:-2]}AA",  # signature changed
        f"{prefix}.{payload}.",  # no signature
        f"{prefix}.{payload}",  # no dot
        token + ".x",
        "aura2." + token[6:],
        offline_mint(("k2", "x" * 40), {**claims, "exp": int(time.time()) + 60}),  # other key
        offline_mint(NEW, {**claims, "scope": "fleet:read", "exp": int(time.time()) + 60}),
        offline_mint(NEW, {**claims, "cus": "not a customer", "exp": int(time.time()) + 60}),
        offline_mint(NEW, {**claims, "exp": True}),
    ):
        with pytest.raises(tokens.TokenError):
            tokens.verify(KEYS, bad)


def test_rotation() -> None:
    by_old = tokens.mint((OLD,), tokens.CUSTOMER_READ, customer="cus_A1")
    by_new = tokens.mint(KEYS, tokens.CUSTOMER_READ, customer="cus_A1")
    assert tokens.verify(KEYS, by_old).kid == "k1"  # the previous key still verifies
    assert tokens.verify((NEW,), by_new).kid == "k2"
    with pytest.raises(tokens.TokenError, match="retired"):
        tokens.verify((NEW,), by_old)  # dropped: every token it signed is refused


def test_key_configuration_errors() -> None:
    env = {"AURA_TOKEN_KEYS": f"k2:{NEW[1]}, k1:{OLD[1]}"}
    assert BridgeConfig.from_env(env).token_keys == KEYS
    assert "nnnn" not in repr(BridgeConfig.from_env(env))
    with pytest.raises(ValueError, match=r"shorter than 32 bytes.*openssl rand"):
        tokens.parse_keys("k1:short")
    with pytest.raises(ValueError, match="kid:secret"):
        tokens.parse_keys("no-colon-here-" + "x" * 40)
    with pytest.raises(ValueError, match="appears twice"):
        tokens.parse_keys(f"k1:{OLD[1]},k1:{NEW[1]}")
    with pytest.raises(tokens.TokenError, match="needs `cus`"):
        tokens.mint(KEYS, tokens.CUSTOMER_READ)
    with pytest.raises(tokens.TokenError, match="needs `sub`"):
        tokens.mint(KEYS, tokens.FLEET_WRITE)


@pytest.mark.integration
async def test_scoped_token_sees_only_its_customer(make_bridge: Any, cluster: Cluster) -> None:
    bridge: Bridge = await make_bridge(token_keys=KEYS)
    _, mine, _ = await checkout(bridge, "mine")
    _, theirs, _ = await checkout(bridge, "theirs")
    set_phase(cluster, bridge.namespace, "mine", "Running", "203.0.113.1")
    ns = bridge.namespace
    minted = await bridge.http.post(
        "/v1/tokens", params={"customer": mine, "ttl": 120}, headers=bearer(TOKEN)
    )
    assert minted.status_code == 200, minted.text
    auth = bearer(minted.json()["token"])
    assert minted.json()["customer"] == mine

    listed = await bridge.http.get("/v1/agents", params={"customer": mine}, headers=auth)
    assert [a["name"] for a in listed.json()["items"]] == ["mine"]
    for path in (f"/v1/agents/{ns}/mine", f"/v1/agents/{ns}/mine/history"):
        assert (await bridge.http.get(path, headers=auth)).status_code == 200, path

    refused = [
        ("GET", f"/v1/agents?customer={theirs}"),
        ("GET", f"/v1/agents?customer={mine}&customer={theirs}"),
        ("GET", f"/v1/agents/{ns}/theirs"),
        ("GET", f"/v1/agents/{ns}/theirs/history"),
        ("GET", f"/v1/agents/{ns}/theirs/events"),
        ("GET", f"/v1/agents/{ns}/no-such-agent"),  # 403, not 404: names are not probed
        ("GET", f"/v1/customers/{theirs}/events"),
        ("GET", "/v1/fleet"),
        ("GET", "/v1/fleet/events"),
        ("POST", f"/v1/tokens?customer={mine}"),
        ("POST", f"/v1/agents/{ns}/mine/actions/stop"),
        ("GET", "/metrics"),  # public routes too: a scoped token grants nothing else
        ("GET", "/openapi.json"),
        ("GET", "/ui/fleet"),
        ("POST", "/v1/stripe/webhook"),
        ("GET", "/no/such/route"),
        # Path tricks, on the path as decoded: never routed, never a 404 hinting at routes.
        ("GET", f"/v1/customers/{mine}%2F..%2F{theirs}/events"),
        ("GET", f"/v1/customers/{mine}/..%2F{theirs}/events"),
        ("GET", f"/v1/agents/{ns}/mine%2F..%2Ftheirs"),
        ("GET", f"/v1/agents/{ns}/mine/..%2Ftheirs"),
        ("GET", f"/v1/agents/{ns}/%2E%2E/{ns}/theirs"),
        ("GET", f"/v1/agents/{ns}/mine/history%2F..%2F..%2Ftheirs"),
        ("GET", f"/v1/agents/{ns}/mine/../theirs"),
        ("GET", f"/v1/agents/{ns}%2Ftheirs"),
    ]
    for method, path in refused:
        response = await bridge.http.request(method, path, headers=auth)
        assert response.status_code == 403, (path, response.status_code, response.text)
        assert theirs not in response.text

    # Query tricks fail validation (422) or the scope (403), never reach the other's data.
    for path in (
        f"/v1/agents?customer={mine}%00{theirs}",
        f"/v1/agents?customer={mine},{theirs}",
        f"/v1/agents?customer={mine}%2C{theirs}",
        f"/v1/agents?customer={mine}%26customer%3D{theirs}",
    ):
        response = await bridge.http.get(path, headers=auth)
        assert response.status_code in (403, 422), (path, response.status_code)
        assert "items" not in response.text and "203.0.113" not in response.text
    # An operator token on the public routes is unaffected.
    assert (await bridge.http.get("/openapi.json", headers=bearer(TOKEN))).status_code == 200


@pytest.mark.integration
async def test_expired_tampered_and_rotated_tokens_on_the_bridge(make_bridge: Any) -> None:
    old_bridge: Bridge = await make_bridge(token_keys=(OLD,))
    _, mine, _ = await checkout(old_bridge, "rotating")
    by_old = tokens.mint((OLD,), tokens.CUSTOMER_READ, customer=mine)
    expired = tokens.mint((OLD,), tokens.CUSTOMER_READ, customer=mine, now=time.time() - 7200)
    path = f"/v1/agents?customer={mine}"
    assert (await old_bridge.http.get(path, headers=bearer(by_old))).status_code == 200
    answer = await old_bridge.http.get(path, headers=bearer(expired))
    assert answer.status_code == 401 and "expired" in answer.json()["detail"]
    forged = by_old[:-3] + ("AAA" if not by_old.endswith("AAA") else "BBB")
    assert (await old_bridge.http.get(path, headers=bearer(forged))).status_code == 401

    rotated: Bridge = await make_bridge(token_keys=(NEW, OLD))  # new key first, old kept
    assert (await rotated.http.get(path, headers=bearer(by_old))).status_code == 200
    minted = await rotated.http.post(f"/v1/tokens?customer={mine}", headers=bearer(TOKEN))
    assert tokens.verify((NEW,), minted.json()["token"]).kid == "k2"
    retired: Bridge = await make_bridge(token_keys=(NEW,))  # old key dropped
    answer = await retired.http.get(path, headers=bearer(by_old))
    assert answer.status_code == 401 and "retired" in answer.json()["detail"]
    assert by_old not in answer.text


@pytest.mark.integration
async def test_minting_needs_an_operator_token_and_a_key(make_bridge: Any) -> None:
    bridge: Bridge = await make_bridge()  # no signing key configured
    answer = await bridge.http.post("/v1/tokens?customer=cus_A1", headers=bearer(TOKEN))
    assert answer.status_code == 403 and "AURA_TOKEN_KEYS" in answer.json()["detail"]
    keyed: Bridge = await make_bridge(token_keys=KEYS)
    assert (await keyed.http.post("/v1/tokens?customer=cus_A1")).status_code == 401
    too_long = await keyed.http.post(
        "/v1/tokens", params={"customer": "cus_A1", "ttl": 10**6}, headers=bearer(TOKEN)
    )
    assert too_long.status_code == 422
