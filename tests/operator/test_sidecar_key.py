"""The tailnet sidecar's auth key (aura/controller/sidecar_key.py): minted with the operator's
OAuth client against the sandbox's Tailscale API, kept in a real Secret, renewed and revoked."""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import Any

import httpx
import pytest
from kubernetes_asyncio import config as kconfig

from aura.controller.clients.tailscale import TailscaleAdapter
from aura.controller.sidecar_key import SidecarKey, ensure_sidecar_key, parse_secret_ref
from tests.kube import Cluster


def secret_data(cluster: Cluster, namespace: str, name: str) -> dict[str, str]:
    secret = cluster.core.read_namespaced_secret(name, namespace)
    return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}


def keys(sandbox: Any) -> dict[str, dict[str, Any]]:
    response = httpx.get(f"{sandbox.ready.admin_url}/tailnet/keys", timeout=10)
    return {k["id"]: k for k in response.json()["keys"]}


def test_the_secret_reference_is_validated() -> None:
    assert parse_secret_ref("aura-system/aura-operator-tailnet") == (
        "aura-system",
        "aura-operator-tailnet",
    )
    for bad in ("aura-operator-tailnet", "/x", "ns/", "a/b/c"):
        with pytest.raises(ValueError, match=r"--tailnet-sidecar-secret .* NAMESPACE/NAME"):
            parse_secret_ref(bad)


async def test_the_key_is_minted_once_kept_then_renewed_and_the_old_one_revoked(
    cluster: Cluster, namespace: str, sandbox: Any
) -> None:
    ready = sandbox.ready
    tailnet = TailscaleAdapter(
        base_url=ready.tailscale_url,
        client_id=ready.tailscale_client_id,
        client_secret=ready.tailscale_client_secret,
        tailnet=ready.tailscale_tailnet,
    )

    # The tailnet policy (README.md): the OAuth client's tag owns the sidecar's tag.
    def allow(world: Any) -> None:
        world._parts["tailnet"].policy.owners["tag:aura-operator"] = ["tag:aura"]

    sandbox.call(allow)
    api = await kconfig.new_client_from_config(config_file=cluster.kubeconfig)
    want = SidecarKey(namespace=namespace, name="aura-operator-tailnet", tag="tag:aura-operator")
    try:
        assert await ensure_sidecar_key(tailnet, api, want) == "minted"
        first = secret_data(cluster, namespace, want.name)
        assert first["TS_AUTHKEY"].startswith("tskey-auth-")
        minted = keys(sandbox)[first["AURA_KEY_ID"]]
        create = minted["capabilities"]["devices"]["create"]
        assert create["tags"] == ["tag:aura-operator"]
        assert create["reusable"] is True and create["ephemeral"] is True
        assert minted["invalidReason"] in (None, "")

        assert await ensure_sidecar_key(tailnet, api, want) == "kept"
        assert secret_data(cluster, namespace, want.name) == first

        # Within the renewal window (here: always), a new key replaces the old, which is revoked.
        due = replace(want, renew_before=want.expiry_seconds + 3600)
        assert await ensure_sidecar_key(tailnet, api, due) == "renewed"
        second = secret_data(cluster, namespace, want.name)
        assert second["TS_AUTHKEY"] != first["TS_AUTHKEY"]
        after = keys(sandbox)
        assert after[first["AURA_KEY_ID"]]["invalidReason"], after[first["AURA_KEY_ID"]]
        assert not after[second["AURA_KEY_ID"]]["invalidReason"]
    finally:
        await tailnet.aclose()
        await api.close()
