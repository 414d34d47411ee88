"""The simulated tailnet: one sandbox's Tailscale state and every rule its fake API enforces.

The HTTP layer (`tailscale.py`) only parses requests and renders what `Tailnet` returns or
raises. Rules follow Tailscale's API v2 documentation and the behaviour its users report; each
concern lives in a module of its own, which `Tailnet` wires together:

| Module | Concern |
| --- | --- |
| `tailnet_callers` | the OAuth client, its access tokens, personal API tokens, scopes |
| `tailnet_policy` | tag ownership (`tagOwners`) for keys, devices and tokens |
| `tailnet_keys` | auth key create / read / list / revoke, validity |
| `tailnet_devices` | device find / list with filters / delete / authorize / retag |
| `tailnet_enrolment` | VMs joining from the world's server events, offline, reconnect, clean-up |
| `tailnet_addresses` | 100.64.0.0/10 + fd7a:115c:a1e0:: addresses, MagicDNS names |
| `tailnet_timers` | named one-shot timers on the world's scheduler |
| `tailnet_admin` | the admin views (counts, devices, keys, joins) |
| `tailnet_persistence` | the state file part, re-arming what was in flight |
| `tailnet_model` | the objects, their API rendering, errors and messages |

Hand-written: no library or container simulates the Tailscale control plane's public API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from aura_sandbox import tailnet_admin, tailnet_persistence
from aura_sandbox.tailnet_addresses import dns_suffix
from aura_sandbox.tailnet_callers import TOKEN_LIFETIME, Callers
from aura_sandbox.tailnet_cloudinit import TailscaleUp
from aura_sandbox.tailnet_devices import DeviceStore
from aura_sandbox.tailnet_enrolment import Enrolment
from aura_sandbox.tailnet_keys import KeyStore
from aura_sandbox.tailnet_model import (
    MSG_NO_TAILNET,
    AuthKey,
    Device,
    PendingJoin,
    Principal,
    TailnetError,
    TailnetTimings,
)
from aura_sandbox.tailnet_policy import DEFAULT_TAG_OWNERS, TagPolicy
from aura_sandbox.tailnet_timers import Timers
from aura_sandbox.tailnet_world import ServerLike, WorldLike


class Tailnet:
    """All Tailscale state of one sandbox; the module docstring maps its concerns."""

    def __init__(
        self,
        world: WorldLike,
        *,
        tailnet: str,
        client_id: str,
        client_secret: str,
        client_tags: Iterable[str],
        time_scale: float = 1.0,
        tag_owners: dict[str, list[str]] | None = None,
        timings: TailnetTimings | None = None,
        wall_clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.world = world
        self.tailnet = tailnet
        self.dns_suffix = dns_suffix(tailnet)
        tags = list(client_tags)
        self.policy = TagPolicy(tag_owners, tags)
        self.callers = Callers(
            client_id=client_id,
            client_secret=client_secret,
            client_tags=tags,
            policy=self.policy,
            wall_clock=wall_clock or (lambda: datetime.now(UTC)),
        )
        self.timers = Timers(world.schedule)
        self.key_store = KeyStore(world, self.policy)
        self.device_store = DeviceStore(self.policy, self.timers)
        self.enrolment = Enrolment(
            world,
            self.callers,
            self.key_store,
            self.device_store,
            timings=timings or TailnetTimings(),
            time_scale=time_scale,
            dns_suffix=self.dns_suffix,
        )

    # --- State, as the parts hold it (tests and the admin API read it) ---------------------

    @property
    def wall_clock(self) -> Callable[[], datetime]:
        """The clock tokens expire on (wall time, not the world's scaled time)."""
        return self.callers.wall_clock

    @wall_clock.setter
    def wall_clock(self, clock: Callable[[], datetime]) -> None:
        self.callers.wall_clock = clock

    @property
    def keys(self) -> dict[str, AuthKey]:
        return self.key_store.keys

    @property
    def devices(self) -> dict[str, Device]:
        return self.device_store.devices

    @property
    def pending(self) -> dict[int, PendingJoin]:
        return self.enrolment.pending

    # --- Callers ---------------------------------------------------------------------------

    def issue_token(
        self, secret: str, scope: str | None = None, tags: str | None = None
    ) -> tuple[Principal, int]:
        return self.callers.issue_token(secret, scope, tags)

    def add_api_key(self, token: str, user: str = "admin@example.com") -> Principal:
        return self.callers.add_api_key(token, user)

    def authenticate(self, token: str | None) -> Principal:
        return self.callers.authenticate(token)

    @staticmethod
    def require(principal: Principal, scope: str) -> None:
        Callers.require(principal, scope)

    def resolve_tailnet(self, name: str) -> None:
        """404 unless `name` is `-` or this tailnet's organization name."""
        if name not in ("-", self.tailnet):
            raise TailnetError(404, MSG_NO_TAILNET)

    # --- Keys and devices ------------------------------------------------------------------

    def create_key(self, principal: Principal, body: Any) -> AuthKey:
        return self.key_store.create_key(principal, body)

    def get_key(self, principal: Principal, key_id: str) -> AuthKey:
        return self.key_store.get_key(principal, key_id)

    def list_keys(self, principal: Principal) -> list[AuthKey]:
        return self.key_store.list_keys(principal)

    def delete_key(self, principal: Principal, key_id: str) -> None:
        self.key_store.delete_key(principal, key_id)

    def find_device(self, device_id: str) -> Device:
        return self.device_store.find_device(device_id)

    def list_devices(self, filters: dict[str, list[str]]) -> list[Device]:
        return self.device_store.list_devices(filters)

    def delete_device(self, device_id: str) -> None:
        self.device_store.delete_device(device_id)

    def set_authorized(self, device_id: str, authorized: bool) -> None:
        self.device_store.set_authorized(device_id, authorized)

    def set_tags(self, principal: Principal, device_id: str, tags: list[str]) -> None:
        self.device_store.set_tags(principal, device_id, tags)

    def set_name(self, device_id: str, name: str) -> None:
        self.device_store.set_name(device_id, name, self.dns_suffix)

    # --- Enrolment, admin views, persistence -----------------------------------------------

    def on_server_event(self, event: str, server: ServerLike) -> None:
        """Listener for the world: `booted`, `powered_off`, `deleted` (others are ignored)."""
        self.enrolment.on_server_event(event, server)

    def summary(self) -> dict[str, int]:
        return tailnet_admin.summary(
            self.world.now(), self.key_store, self.device_store, self.enrolment
        )

    def devices_summary(self) -> list[dict[str, Any]]:
        return tailnet_admin.devices_summary(self.device_store)

    def keys_summary(self) -> list[dict[str, Any]]:
        return tailnet_admin.keys_summary(self.world.now(), self.key_store)

    def joins_summary(self) -> list[dict[str, Any]]:
        return tailnet_admin.joins_summary(self.enrolment)

    def to_dict(self) -> dict[str, Any]:
        return tailnet_persistence.dump(self.enrolment)

    def load_dict(self, data: dict[str, Any]) -> None:
        tailnet_persistence.load(self.enrolment, data)


__all__ = [
    "DEFAULT_TAG_OWNERS",
    "TOKEN_LIFETIME",
    "Tailnet",
    "TailscaleUp",
    "WorldLike",
]
