"""The simulated cloud objects. Plain dataclasses: rendering to the Hetzner wire format lives
in `hetzner_render`, state changes in `lifecycle`, so these stay easy to persist.

Times are timezone-aware UTC datetimes; ids are ints, as on the wire.
"""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Self

SERVER_STATUSES = (
    "running",
    "initializing",
    "starting",
    "stopping",
    "off",
    "deleting",
    "migrating",
    "rebuilding",
    "unknown",
)


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


Disk = dict[str, bytes]
"""A simulated disk's files: absolute path -> content."""


class _Created:
    """`to_dict`/`from_dict` for a dataclass whose one datetime field is `created` (and whose
    optional `disk` holds bytes, stored as base64 in the state file)."""

    __dataclass_fields__: ClassVar[dict[str, Any]]
    created: datetime

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["created"] = self.created.isoformat()
        if "disk" in d:
            d["disk"] = {p: base64.b64encode(b).decode() for p, b in d["disk"].items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        d = dict(d)
        d["created"] = _dt(d["created"])
        if "disk" in d:
            d["disk"] = {p: base64.b64decode(b) for p, b in d["disk"].items()}
        return cls(**d)


@dataclass
class SimAction:
    """A Hetzner action. `duration` is wall-clock seconds (already scaled); None never ends."""

    id: int
    command: str
    started: datetime
    resources: list[dict[str, Any]]
    status: str = "running"
    finished: datetime | None = None
    error: dict[str, str] | None = None
    duration: float | None = 0.0
    started_mono: float = 0.0
    progress_done: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["started"] = self.started.isoformat()
        d["finished"] = self.finished.isoformat() if self.finished else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SimAction:
        d = dict(d)
        d["started"] = _dt(d["started"])
        d["finished"] = _dt(d["finished"])
        return cls(**d)


@dataclass
class SimServer(_Created):
    """A simulated server.

    `configured` is set by the operator's configurator (admin API); `cloud_init_done` flips a
    realistic delay after the first boot; `first_boot` is true until the first boot completes
    and stays meaningful in the `booted` listener event (it says whether *that* boot was the
    first one).

    The disk is `disk` (files the admin API and the gateway write) plus `disk_base_gb` of data
    that is not modelled file by file (the OS, the packages). Traffic counters are bytes this
    billing period. Health faults (`gateway_fault`, `unreachable`) each say which event clears
    them (`*_clears_on`: `restart` of the gateway service, `reboot` of the server, or `never`).
    """

    id: int
    name: str
    server_type: str
    location: str
    image_id: int | None
    created: datetime
    ipv4: str | None
    ipv4_id: int | None
    ipv6: str | None
    ipv6_id: int | None
    status: str = "initializing"
    labels: dict[str, str] = field(default_factory=dict)
    user_data: str | None = None
    ssh_keys: list[int] = field(default_factory=list)
    firewalls: list[int] = field(default_factory=list)
    root_password: str | None = None
    configured: bool = False
    openclaw_version: str | None = None
    cloud_init_done: bool = False
    first_boot: bool = True
    booted_once: bool = False
    rebooting: bool = False
    never_boots: bool = False
    protection_delete: bool = False
    protection_rebuild: bool = False
    lock_actions: list[int] = field(default_factory=list)
    deleted: bool = False
    disk: Disk = field(default_factory=dict)
    disk_base_gb: float = 0.0
    outgoing_traffic: int = 0
    ingoing_traffic: int = 0
    configuring: bool = False
    gateway_restarting: bool = False
    gateway_stopped: bool = False
    gateway_fault: str | None = None
    gateway_fault_clears_on: str = "restart"
    unreachable: bool = False
    unreachable_clears_on: str = "never"
    boot_count: int = 0

    @property
    def locked(self) -> bool:
        return bool(self.lock_actions)


@dataclass
class SimImage(_Created):
    """A snapshot or backup (system images are static, in `catalog`).

    It carries a copy of the source server's disk (`disk`, `used_gb`) and whether the gateway
    on it was configured, so a server created or rebuilt from it starts where the source was.
    `image_size` (GB of used data) is only known once the image is `available`.
    """

    id: int
    type: str
    description: str
    created: datetime
    created_from: dict[str, Any] | None
    architecture: str
    os_flavor: str
    os_version: str | None
    disk_size: float
    status: str = "creating"
    image_size: float | None = None
    bound_to: int | None = None
    labels: dict[str, str] = field(default_factory=dict)
    protection_delete: bool = False
    disk: Disk = field(default_factory=dict)
    used_gb: float = 0.0
    configured: bool = False
    openclaw_version: str | None = None


@dataclass
class SimSshKey(_Created):
    id: int
    name: str
    public_key: str
    fingerprint: str
    created: datetime
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class SimFirewall(_Created):
    id: int
    name: str
    created: datetime
    rules: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    servers: list[int] = field(default_factory=list)
    selectors: list[str] = field(default_factory=list)
