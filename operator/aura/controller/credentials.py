"""The operator's cloud credentials: from the environment, or from a Secret that overrides it.

`--credentials-secret NAMESPACE/NAME` names a Secret whose HCLOUD_TOKEN,
TAILSCALE_OAUTH_CLIENT_ID and TAILSCALE_OAUTH_CLIENT_SECRET keys replace the values from flags
or environment; `credentials_source` then says so, so an `InvalidCredentials` condition names
the Secret to fix. The operator refuses to start while any of the three is empty.
"""

from __future__ import annotations

from dataclasses import replace

import click

from aura.controller.clients.kube import SecretStore
from aura.controller.settings import OperatorConfig

REQUIRED = ("HCLOUD_TOKEN", "TAILSCALE_OAUTH_CLIENT_ID", "TAILSCALE_OAUTH_CLIENT_SECRET")


async def from_secret(secrets: SecretStore, config: OperatorConfig, ref: str) -> OperatorConfig:
    """`config` with the credentials found in the Secret `ref` ("namespace/name")."""
    namespace, _, name = ref.partition("/")
    data = await secrets.get(namespace, name)
    if data is None:
        raise click.UsageError(f"credentials Secret {ref} not found")
    return replace(
        config,
        hcloud_token=data.get("HCLOUD_TOKEN", config.hcloud_token),
        tailscale_client_id=data.get("TAILSCALE_OAUTH_CLIENT_ID", config.tailscale_client_id),
        tailscale_client_secret=data.get(
            "TAILSCALE_OAUTH_CLIENT_SECRET", config.tailscale_client_secret
        ),
        credentials_source=f"Secret {ref}",
    )


def require(config: OperatorConfig) -> None:
    """Refuse to start (a usage error naming each one) when a credential is empty."""
    values = (config.hcloud_token, config.tailscale_client_id, config.tailscale_client_secret)
    missing = [name for name, value in zip(REQUIRED, values, strict=True) if not value]
    if missing:
        raise click.UsageError(f"missing credentials: {', '.join(missing)}")
