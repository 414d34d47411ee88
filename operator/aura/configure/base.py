"""The contract between the reconcile loop and whatever configures a server.

Two implementations exist: the production one runs the playbook in `ansible/` through
ansible-runner; the sandbox one tells the simulated world that the server is configured.
Both are idempotent: configuring an already configured server is a quick no-op success.

Error contract: a run that finished and failed is a `ConfigResult` with `ok=False`. A run that
could not be carried out (the target or the configuring service unreachable, the time limit
hit) raises `ConfigurationError` (or its `ConfigurationTimeout`), whose message must be safe to
show in a condition: built from what failed, never from an arbitrary exception's text. The
reconcile loop retries these within the step's budget. Any other exception is a bug in the
configurator: it is not retried as a transient failure and fails the pass loudly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class ConfigTarget:
    """Everything a configurator needs to reach and configure one agent host.

    Secrets (`ssh_private_key`, `runtime_env`) are plain strings here and must never be
    logged, put in exceptions, or written anywhere but a private, short-lived location.
    """

    agent: str  # "namespace/name", for logs and run names
    server_id: int
    host: str  # address to connect to
    port: int = 22
    user: str = "root"
    ssh_private_key: str = field(default="", repr=False)
    ssh_host_public_key: str = ""  # the pinned host key ("ssh-ed25519 AAAA..."); "" = unknown
    openclaw_version: str = ""
    gateway_port: int = 18789
    runtime_env: dict[str, str] = field(default_factory=dict, repr=False)
    settings: dict[str, object] = field(default_factory=dict)
    extra_vars: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ConfigResult:
    """Outcome of one configuration run.

    `ok` False means the run finished and failed: `failed_task` and `message` say where and
    why, in words safe to show in a condition (no secrets).
    """

    ok: bool
    message: str = ""
    failed_task: str | None = None
    changed: int = 0
    duration_seconds: float = 0.0


class ConfigurationError(Exception):
    """The run could not be carried out; transient. The message holds no secrets."""


class ConfigurationTimeout(ConfigurationError):
    """The run did not finish within its time limit; it has been stopped."""


class Configurator(Protocol):
    """Brings a server to the configured state. Cancelling the awaiting task stops the run."""

    async def configure(self, target: ConfigTarget) -> ConfigResult:
        """Configure `target`; raises only `ConfigurationError` (see the module docstring)."""
        ...
