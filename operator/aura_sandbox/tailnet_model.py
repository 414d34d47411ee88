"""The objects of the simulated tailnet and how the Tailscale API renders them.

Plain dataclasses (persisted with `dataclasses.asdict`), their wire rendering (`to_api`),
the `TailnetError` every rule raises (HTTP status plus the `{"message": ...}` text), the
messages the real API is known to use, and the scope rule `grants`. The rules that create
and change these objects live in the `tailnet_*` modules that `tailnet.Tailnet` composes.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

CLIENT_VERSION = "1.90.6-t2f0c1b3a4-g8e1d2c3b4"
"""`clientVersion` of simulated nodes (format of tailscaled's long version)."""
ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)
"""What the API shows as `expires` of a device whose key expiry is disabled (Go zero time)."""

# Messages users quote from the real API (GitHub issues named beside each):
MSG_UNAUTHORIZED = "API token invalid"  # 401, tailscale/gitops-acl-action#33
MSG_FORBIDDEN = "calling actor does not have enough permissions to perform this function"  # 403
MSG_NO_DEVICE = "no manageable device matching this ID found"  # 404, terraform-provider#585
# No source quotes these two; they follow the spec's example bodies.
MSG_NOT_FOUND = "not found"
MSG_NO_TAILNET = "tailnet not found"


_ALNUM = string.ascii_letters + string.digits


def random_chars(n: int) -> str:
    """`n` random letters and digits, the alphabet of Tailscale's ids and key secrets."""
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


class TailnetError(Exception):
    """An API error: HTTP `status` and the `message` of the `{"message": ...}` body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def tags_error(tags: Iterable[str]) -> TailnetError:
    """The 400 the real API gives for missing, unknown or forbidden tags."""
    return TailnetError(400, f"requested tags [{' '.join(tags)}] are invalid or not permitted")


TAILSCALE_BINARY = "/usr/bin/tailscale"
"""On a simulated disk once cloud-init installed Tailscale; a snapshot carries it along."""
NODE_STATE = "/var/lib/tailscale/tailscaled.state"
"""tailscaled's state file (the path its systemd unit passes to `--state`). Written when the
VM's node registers; a snapshot carries it along, so a server created from the image starts
tailscaled logged in as that node (`tailnet_nodestate`)."""


@dataclass
class TailnetTimings:
    """Realistic durations in simulated seconds; the world applies `time_scale`."""

    join: float = 45.0
    """From the server's first `running` to its device in the tailnet: cloud-init installs
    the tailscale package and runs `tailscale up` (no source gives a figure)."""
    join_preinstalled: float = 15.0
    """The same on a server whose disk already has the tailscale package (`TAILSCALE_BINARY`,
    e.g. created from a golden image): `tailscale up` only. Estimate: the install script
    returns at once when the package is present, leaving the login round-trip."""
    reconnect: float = 5.0
    """From a later boot to `connectedToControl` again (tailscaled starts with the system)."""
    ephemeral_gc: float = 1800.0
    """Offline ephemeral devices are removed "after a short period of inactivity" (KB 1111);
    the blog says it "could take an hour or longer", a design note 30-60 min."""


@dataclass
class Principal:
    """Who an access token acts as."""

    token: str
    kind: str
    """`oauth` (an OAuth client's access token) or `user` (a personal API access token)."""
    scopes: list[str]
    tags: list[str]
    expires: datetime | None
    """Wall-clock expiry; None for personal keys."""
    owner: str
    """OAuth client id, or the user's login."""

    @property
    def key_owner(self) -> str:
        """Who owns the keys this caller creates: the tailnet for OAuth, else the user."""
        return "tailnet" if self.kind == "oauth" else self.owner


@dataclass
class AuthKey:
    id: str
    secret: str
    created: datetime
    expires: datetime
    owner: str
    reusable: bool = False
    ephemeral: bool = False
    preauthorized: bool = False
    tags: list[str] = field(default_factory=list)
    description: str = ""
    revoked: datetime | None = None
    uses: int = 0

    def invalid_reason(self, now: datetime) -> str | None:
        """Why the key can no longer register a device, or None while it can."""
        if self.revoked is not None:
            return "key revoked"
        if now >= self.expires:
            return "key expired"
        if not self.reusable and self.uses > 0:
            return "single-use key already used"
        return None

    def capabilities(self) -> dict[str, Any]:
        create = {
            "reusable": self.reusable,
            "ephemeral": self.ephemeral,
            "preauthorized": self.preauthorized,
            "tags": list(self.tags),
        }
        return {"devices": {"create": create}}

    def to_api(self, now: datetime, *, with_secret: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id}
        if with_secret:
            body["key"] = self.secret
        body |= {
            "keyType": "auth",
            "created": rfc3339(self.created),
            "expires": rfc3339(self.expires),
            "expirySeconds": round((self.expires - self.created).total_seconds()),
            "capabilities": self.capabilities(),
            "description": self.description,
        }
        if self.revoked is not None:
            body["revoked"] = rfc3339(self.revoked)
        body["invalid"] = self.invalid_reason(now) is not None
        return body


@dataclass
class Device:
    id: str
    node_id: str
    hostname: str
    name: str
    addresses: list[str]
    tags: list[str]
    authorized: bool
    is_ephemeral: bool
    user: str
    created: datetime
    expires: datetime
    key_expiry_disabled: bool
    machine_key: str
    node_key: str
    tailnet_lock_key: str
    key_id: str
    server_id: int | None
    server_name: str
    connected: bool = True
    last_seen: datetime | None = None
    os: str = "linux"
    client_version: str = CLIENT_VERSION

    def to_api(self, *, all_fields: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "addresses": list(self.addresses),
            "authorized": self.authorized,
            "blocksIncomingConnections": False,
            "clientVersion": self.client_version,
            "connectedToControl": self.connected,
            "created": rfc3339(self.created),
            "expires": rfc3339(self.expires),
            "hostname": self.hostname,
            "id": self.id,
            "isEphemeral": self.is_ephemeral,
            "isExternal": False,
            "keyExpiryDisabled": self.key_expiry_disabled,
            "machineKey": self.machine_key,
            "name": self.name,
            "nodeId": self.node_id,
            "nodeKey": self.node_key,
            "os": self.os,
            "tags": list(self.tags),
            "tailnetLockError": "",
            "tailnetLockKey": self.tailnet_lock_key,
            "updateAvailable": False,
            "user": self.user,
        }
        if self.last_seen is not None and not self.connected:
            body["lastSeen"] = rfc3339(self.last_seen)
        if all_fields:
            body |= {
                "advertisedRoutes": [],
                "enabledRoutes": [],
                "clientConnectivity": {
                    "endpoints": [],
                    "mappingVariesByDestIP": False,
                    "latency": {"Nuremberg": {"preferred": True, "latencyMs": 4.2}},
                    "clientSupports": {
                        "hairPinning": False,
                        "ipv6": True,
                        "pcp": False,
                        "pmp": False,
                        "udp": True,
                        "upnp": False,
                    },
                },
                "postureIdentity": {"disabled": True},
                "sshEnabled": False,
                "distro": {"name": "ubuntu", "version": "24.04", "codeName": "noble"},
            }
        return body


@dataclass
class PendingJoin:
    server_id: int
    server_name: str
    auth_key: str
    hostname: str
    advertise_tags: list[str]
    due: datetime
    """World time at which the VM registers."""
    node_state: dict[str, str] | None = None
    """The node identity found in `NODE_STATE` on the disk: tailscaled logs in with it at
    `due`, before (and instead of) registering with `auth_key` (`tailnet_nodestate`)."""
    up_delay: float = 0.0
    """Simulated seconds from `due` until `tailscale up` runs, for a node whose stored
    identity the control plane rejects (it then registers with `auth_key`)."""


@dataclass
class JoinAttempt:
    """One VM's attempt to join, for the admin API: `outcome` is pending, joined or failed."""

    server_id: int
    server_name: str
    outcome: str
    reason: str
    at: datetime
    device_id: str | None = None


def rfc3339(value: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, whole seconds, as the Tailscale API writes times."""
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def grants(held: Iterable[str], needed: str) -> bool:
    """Whether holding the scopes `held` allows an operation that needs scope `needed`."""
    for scope in held:
        if scope in (needed, "all"):
            return True
        if needed.endswith(":read") and scope == "all:read":
            return True
        if needed.startswith(scope + ":"):  # devices:core covers devices:core:read
            return True
    return False
