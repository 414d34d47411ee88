"""The tailnet sidecar's auth key: minted by the operator at start-up, kept in a Secret.

The operator's Pod reaches the tailnet through a Tailscale sidecar (userspace networking; see
aura/configure/proxy.py). That sidecar needs an auth key of its own, tagged with the operator's
tag (not the Agents' tags), which the operator mints with its OAuth client: the installer
never handles a Tailscale key. The key is reusable (every replica and restart joins with it),
ephemeral (a deleted Pod's node leaves the tailnet by itself) and preauthorized. It is kept in
the Secret `--tailnet-sidecar-secret` under `TS_AUTHKEY`; the sidecar reads it from there and
starts once it exists.

`ensure_sidecar_key` is idempotent and safe with several replicas starting at once: a valid
key in the Secret is kept; a missing one, or one that expires within `renew_before`, is
replaced; when two replicas race to create the Secret, the loser revokes its own key.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from dataclasses import dataclass

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from aura.controller.clients.tailscale import TailnetApi

log = logging.getLogger("aura.operator")

KEY_FIELD = "TS_AUTHKEY"
ID_FIELD = "AURA_KEY_ID"
EXPIRES_FIELD = "AURA_KEY_EXPIRES"
LABELS = {"app.kubernetes.io/name": "aura", "app.kubernetes.io/component": "operator"}


@dataclass(frozen=True)
class SidecarKey:
    namespace: str
    name: str
    tag: str
    expiry_seconds: int = 90 * 24 * 3600
    renew_before: int = 7 * 24 * 3600


def parse_secret_ref(value: str) -> tuple[str, str]:
    """`NAMESPACE/NAME` -> (namespace, name); ValueError naming the setting otherwise."""
    namespace, sep, name = value.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise ValueError(
            "--tailnet-sidecar-secret (AURA_TAILNET_SIDECAR_SECRET) must be NAMESPACE/NAME of the "
            f"Secret the sidecar reads its auth key from, e.g. aura-system/aura-operator-tailnet; "
            f"got {value!r}"
        )
    return namespace, name


async def ensure_sidecar_key(tailnet: TailnetApi, api: client.ApiClient, want: SidecarKey) -> str:
    """Make sure the Secret holds a usable sidecar key; returns what was done (for the log)."""
    core = client.CoreV1Api(api)
    current = await _read(core, want)
    now = int(time.time())
    if current is not None and current.get(KEY_FIELD):
        expires = int(current.get(EXPIRES_FIELD) or 0)
        if expires - now > want.renew_before:
            return "kept"
    key = await tailnet.create_auth_key(
        tags=[want.tag],
        description="aura operator tailnet sidecar",
        expiry_seconds=want.expiry_seconds,
        reusable=True,
        ephemeral=True,
    )
    data = {KEY_FIELD: key.key, ID_FIELD: key.id, EXPIRES_FIELD: str(now + want.expiry_seconds)}
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name=want.name, namespace=want.namespace, labels=LABELS),
        type="Opaque",
        string_data=data,
    )
    if current is None:
        try:
            await core.create_namespaced_secret(want.namespace, body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            # Another replica created it first: use its key, revoke ours.
            await tailnet.delete_auth_key(key.id)
            return "kept (created by another replica)"
        return "minted"
    await core.replace_namespaced_secret(want.name, want.namespace, body)
    if old := current.get(ID_FIELD):
        await tailnet.delete_auth_key(old)
    return "renewed"


async def keep_sidecar_key(
    tailnet: TailnetApi, api: client.ApiClient, want: SidecarKey, retry: float = 60.0
) -> None:
    """Run `ensure_sidecar_key` now, then daily (renewal); retry failures every `retry` s.

    Never raises: the operator itself works without the sidecar (probes and SSH then fail
    until the key exists), so a Tailscale outage at start-up must not stop it.
    """
    while True:
        try:
            outcome = await ensure_sidecar_key(tailnet, api, want)
        except Exception as exc:  # logged and retried; an outage must not stop the operator
            log.warning(
                "tailnet sidecar key for Secret %s/%s: %s; retrying in %.0fs",
                want.namespace,
                want.name,
                exc,
                retry,
            )
            await asyncio.sleep(retry)
            continue
        log.info("tailnet sidecar key in Secret %s/%s: %s", want.namespace, want.name, outcome)
        await asyncio.sleep(24 * 3600)


async def _read(core: client.CoreV1Api, want: SidecarKey) -> dict[str, str] | None:
    try:
        secret = await core.read_namespaced_secret(want.name, want.namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
