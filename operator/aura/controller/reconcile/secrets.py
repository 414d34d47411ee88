"""The two Secrets of an Agent: its SSH key material and its tailnet auth key.

- `<agent>-ssh` holds the operator's per-agent client key pair and the server's ed25519 host
  key pair. The host key is generated here and injected through cloud-init, so the first SSH
  connection is already verified against a pinned key (no trust-on-first-use window).
- `<agent>-tailnet-authkey` holds a single-use, pre-authorized, tagged auth key, minted only
  when the Secret is missing (lesson from the Tailscale operator: never mint a second key while
  the first may still be used by a booting server).

Both are created with create-if-absent semantics: when two reconciles race, the loser's fresh
key is revoked and the winner's Secret is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aura.controller import naming
from aura.controller.reconcile.context import AgentContext


@dataclass(frozen=True)
class SshMaterial:
    client_private_key: str = field(repr=False)
    client_public_key: str
    host_private_key: str = field(repr=False)
    host_public_key: str


@dataclass(frozen=True)
class TailnetKey:
    key_id: str
    key: str = field(repr=False)


def _keypair(comment: str) -> tuple[str, str]:
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = (
        private.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return pem, f"{public} {comment}"


async def ensure_ssh_material(ctx: AgentContext) -> SshMaterial:
    """Read the SSH Secret, creating it with fresh key pairs if it does not exist."""
    name = naming.ssh_secret(ctx.ref)
    data = await ctx.op.secrets.get(ctx.ref.namespace, name)
    if data is None:
        client_private, client_public = _keypair(f"aura-operator@{ctx.server_name}")
        host_private, host_public = _keypair(f"root@{ctx.server_name}")
        data = {
            "ssh-privatekey": client_private,
            "ssh-publickey": client_public,
            "host-privatekey": host_private,
            "host-publickey": host_public,
        }
        labels = naming.secret_labels(ctx.ref, "ssh")
        if not await ctx.op.secrets.create(ctx.ref, name, data, labels):
            data = await ctx.op.secrets.get(ctx.ref.namespace, name) or data
    return SshMaterial(
        client_private_key=data["ssh-privatekey"],
        client_public_key=data["ssh-publickey"],
        host_private_key=data["host-privatekey"],
        host_public_key=data["host-publickey"],
    )


async def ensure_tailnet_key(ctx: AgentContext) -> TailnetKey:
    """Read the auth-key Secret, minting a key and creating the Secret if it is missing."""
    name = naming.auth_key_secret(ctx.ref)
    data = await ctx.op.secrets.get(ctx.ref.namespace, name)
    if data is not None:
        return TailnetKey(key_id=data["key-id"], key=data["authkey"])
    minted = await ctx.op.tailnet.create_auth_key(
        tags=ctx.tags,
        description=f"aura {ctx.server_name}"[:50],
        expiry_seconds=ctx.config.auth_key_expiry,
    )
    labels = naming.secret_labels(ctx.ref, "tailnet-authkey")
    if await ctx.op.secrets.create(
        ctx.ref, name, {"authkey": minted.key, "key-id": minted.id}, labels
    ):
        ctx.log.info("minted tailnet auth key %s (tags %s)", minted.id, ",".join(ctx.tags))
        return TailnetKey(key_id=minted.id, key=minted.key)
    # Lost a race with another pass: use the stored key, revoke ours.
    await ctx.op.tailnet.delete_auth_key(minted.id)
    data = await ctx.op.secrets.get(ctx.ref.namespace, name)
    assert data is not None
    return TailnetKey(key_id=data["key-id"], key=data["authkey"])


async def delete_tailnet_key(ctx: AgentContext) -> None:
    """Revoke the auth key (unknown counts as done) and delete its Secret."""
    name = naming.auth_key_secret(ctx.ref)
    data = await ctx.op.secrets.get(ctx.ref.namespace, name)
    if data is not None and data.get("key-id"):
        await ctx.op.tailnet.delete_auth_key(data["key-id"])
    await ctx.op.secrets.delete(ctx.ref.namespace, name)


async def delete_ssh_material(ctx: AgentContext) -> None:
    await ctx.op.secrets.delete(ctx.ref.namespace, naming.ssh_secret(ctx.ref))
