"""A simulated server's disk: a small map of path -> bytes plus a size for everything else.

What is on a disk decides what the sandbox does: the configurator installs the packages only
when `PACKAGES_MARKER` is missing or names another version (a golden image skips the install);
the gateway starts on boot when `GATEWAY_CONFIG` exists and serves the token written there; a
snapshot copies the whole disk and a server created or rebuilt from it gets the copy.

Used size (what a snapshot's `image_size` reports, and what its duration grows with) is
`base_gb` (OS and packages, not modelled file by file) plus the bytes of the files.
"""

from __future__ import annotations

import json
import math
from typing import Any

from aura_sandbox.model import Disk, SimServer
from aura_sandbox.world import World

PACKAGES_MARKER = "/usr/lib/node_modules/openclaw/package.json"
"""Written by a full install: `{"name": "openclaw", "version": ...}` (npm's own file)."""
GATEWAY_CONFIG = "/home/openclaw/.openclaw/openclaw.json"
"""Written by every configuration run: the gateway's settings, including its token."""
HEARTBEAT = "/var/lib/openclaw/heartbeat"
"""Rewritten by a serving gateway every `Timings.heartbeat_interval` simulated seconds."""
MAX_FILE_BYTES = 1024 * 1024
"""The admin API refuses bigger files: the disk map is for markers, not for bulk data."""

GB = 1e9


def valid_path(path: str) -> bool:
    """Absolute, normalised (no `..` or empty segments), not a directory."""
    if not path.startswith("/") or path.endswith("/"):
        return False
    return all(part not in ("", ".", "..") for part in path[1:].split("/"))


def used_gb(files: Disk, base_gb: float) -> float:
    """Used data in GB, rounded up to the hundredth (Hetzner reports image sizes in GB)."""
    raw = base_gb + sum(len(b) for b in files.values()) / GB
    return math.ceil(raw * 100 - 1e-9) / 100


def installed_version(files: Disk) -> str | None:
    """The OpenClaw version the packages marker names, if any."""
    data = _json(files.get(PACKAGES_MARKER))
    version = data.get("version") if data else None
    return version if isinstance(version, str) else None


def gateway_settings(files: Disk) -> dict[str, Any] | None:
    """The gateway's configuration, or None when it was never configured on this disk."""
    return _json(files.get(GATEWAY_CONFIG))


def gateway_token(files: Disk) -> str | None:
    settings = gateway_settings(files) or {}
    auth = settings.get("gateway", {}).get("auth", {})
    token = auth.get("token") if isinstance(auth, dict) else None
    return token if isinstance(token, str) and token else None


def write_packages(files: Disk, version: str) -> None:
    files[PACKAGES_MARKER] = json.dumps({"name": "openclaw", "version": version}).encode()


def write_gateway_config(files: Disk, version: str, token: str | None) -> None:
    auth: dict[str, Any] = {"mode": "token", "token": token} if token else {"mode": "none"}
    settings = {"gateway": {"mode": "local", "port": 18789, "bind": "lan", "auth": auth}}
    settings["meta"] = {"openclaw_version": version}
    files[GATEWAY_CONFIG] = json.dumps(settings, indent=2).encode()


def _json(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def apply_image(world: World, server: SimServer, image_id: int | None) -> float:
    """Put `image_id`'s disk on `server`; returns the extra seconds restoring it takes.

    A system image gives an empty map and a fresh OS's used size; a snapshot gives a copy of
    its disk, and the gateway is configured when it was on the snapshot's source.
    """
    t = world.config.timings
    snapshot = world.hetzner.images.get(image_id) if image_id is not None else None
    server.image_id = image_id
    if snapshot is None:
        server.disk, server.disk_base_gb = {}, t.system_image_used_gb
        server.configured, server.openclaw_version = False, None
        return 0.0
    server.disk = dict(snapshot.disk)
    files_gb = sum(len(b) for b in snapshot.disk.values()) / GB
    server.disk_base_gb = max(0.0, snapshot.used_gb - files_gb)
    server.configured, server.openclaw_version = snapshot.configured, snapshot.openclaw_version
    return t.restore_seconds(snapshot.image_size or snapshot.used_gb)
