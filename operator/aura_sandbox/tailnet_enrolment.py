"""How VMs join the simulated tailnet, driven by the world's server events, and how their devices
go offline, reconnect and are cleaned up.

- `booted` with `first_boot`: if the server's `user_data` runs `tailscale up --auth-key=...`
  (see `tailnet_cloudinit`) and no `device_never_joins` fault matches the server name, the VM
  joins `timings.join` simulated seconds later, if the key is still valid then. Otherwise it
  never joins; the reason is recorded in `joins`.
- The device: `hostname` is `--hostname` (else the server name) as the VM reports it; `name` is
  the MagicDNS FQDN (`tailnet_addresses`). Tags are `--advertise-tags` if given (each must be a
  key tag or owned by one), else the key's; `isEphemeral` from the key; `authorized` is the key's
  `preauthorized` (the sandbox tailnet has device approval on). A `tskey-client-...` secret makes
  the node mint its own key (feature/oauthkey).
- `connectedToControl` is true while the server runs; `lastSeen` is absent while connected
  (client-go-v2: "Will be nil if ConnectedToControl is true") and frozen at the moment the server
  went off. A reboot reconnects the same device after `timings.reconnect`.
- An ephemeral device is removed `timings.ephemeral_gc` simulated seconds after it went offline
  (power off or server deleted), unless it reconnects first. Non-ephemeral devices stay, offline,
  until deleted through the API.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from aura_sandbox import tailnet_addresses as addresses
from aura_sandbox.tailnet_callers import Callers
from aura_sandbox.tailnet_cloudinit import find_tailscale_up
from aura_sandbox.tailnet_devices import DeviceStore
from aura_sandbox.tailnet_keys import KeyStore
from aura_sandbox.tailnet_model import (
    TAILSCALE_BINARY,
    ZERO_TIME,
    AuthKey,
    Device,
    JoinAttempt,
    PendingJoin,
    TailnetError,
    TailnetTimings,
    random_chars,
)
from aura_sandbox.tailnet_world import ServerLike, WorldLike

log = logging.getLogger(__name__)

JOINS_KEPT = 200
"""Join attempts remembered for `GET /admin/tailscale/joins`."""


class Enrolment:
    """Joins, reconnects and clean-ups; devices land in `store`, keys come from `keys` (or are
    minted through `callers` for a `tskey-client-...` secret), timers are the store's."""

    def __init__(
        self,
        world: WorldLike,
        callers: Callers,
        keys: KeyStore,
        store: DeviceStore,
        *,
        timings: TailnetTimings,
        time_scale: float,
        dns_suffix: str,
    ) -> None:
        self.world = world
        self.callers, self.keys, self.store = callers, keys, store
        self.policy = keys.policy
        self.timers = store.timers
        self.timings = timings
        self.time_scale = time_scale
        self.dns_suffix = dns_suffix
        self.pending: dict[int, PendingJoin] = {}
        self.joins: list[JoinAttempt] = []

    def on_server_event(self, event: str, server: ServerLike) -> None:
        """Listener for the world: `booted`, `powered_off`, `deleted` (others are ignored)."""
        device = self.store.of_server(server.id)
        if event == "booted":
            if device is not None:
                self.timers.cancel(("gc", device.node_id))
                self.timers.set(
                    ("reconnect", device.node_id),
                    self.timings.reconnect,
                    lambda: self._reconnect(device.node_id),
                )
            elif server.first_boot:
                self._plan_join(server)
        elif event in ("powered_off", "deleted"):
            if self.pending.pop(server.id, None) is not None:
                self.timers.cancel(("join", str(server.id)))
                self._record(server.id, server.name, "failed", f"server {event} before joining")
            if device is not None:
                self._go_offline(device)
                if event == "deleted":
                    device.server_id = None

    def _plan_join(self, server: ServerLike) -> None:
        up = find_tailscale_up(server.user_data)
        if up is None:
            return
        if self.world.faults.consume("device_never_joins", server_name=server.name):
            self._record(server.id, server.name, "failed", "fault device_never_joins")
            return
        files = getattr(server, "disk", None) or {}
        join = self.timings.join_preinstalled if TAILSCALE_BINARY in files else self.timings.join
        self.schedule_join(
            PendingJoin(
                server_id=server.id,
                server_name=server.name,
                auth_key=up.auth_key,
                hostname=up.hostname or server.name,
                advertise_tags=list(up.advertise_tags),
                due=self.world.now() + timedelta(seconds=join * self.time_scale),
            ),
            join,
        )
        self._record(server.id, server.name, "pending", "tailscale up is running")

    def schedule_join(self, pending: PendingJoin, delay: float) -> None:
        self.pending[pending.server_id] = pending
        self.timers.set(("join", str(pending.server_id)), delay, lambda: self._join(pending))

    def _join(self, pending: PendingJoin) -> None:
        if self.pending.get(pending.server_id) is not pending:
            return
        del self.pending[pending.server_id]
        try:
            key, tags = self._registration_key(pending)
        except TailnetError as exc:
            log.info("tailnet: server %s cannot join: %s", pending.server_name, exc.message)
            self._record(pending.server_id, pending.server_name, "failed", exc.message)
            return
        device = self._new_device(pending, key, tags)
        key.uses += 1
        self.store.devices[device.node_id] = device
        log.info("tailnet: server %s joined as %s", pending.server_name, device.name)
        self._record(pending.server_id, pending.server_name, "joined", device.name, device.node_id)

    def _registration_key(self, pending: PendingJoin) -> tuple[AuthKey, list[str]]:
        """The key a VM registers with and the tags its device gets; 400 if it cannot."""
        secret = pending.auth_key
        if secret.startswith("tskey-client-"):
            key = self._key_from_client_secret(secret, pending.advertise_tags)
        else:
            found = self.keys.by_secret(secret)
            if found is None:
                raise TailnetError(400, "invalid key: API key not valid")
            key = found
        reason = key.invalid_reason(self.world.now())
        if reason is not None:
            raise TailnetError(400, f"invalid key: API key {key.id} not valid ({reason})")
        return key, self.policy.device_tags(pending.advertise_tags, key.tags)

    def _key_from_client_secret(self, value: str, advertise_tags: list[str]) -> AuthKey:
        """`--auth-key=tskey-client-...?ephemeral=..&preauthorized=..`: the node mints a key
        itself (feature/oauthkey: ephemeral defaults true, preauthorized false)."""
        secret, _, query = value.partition("?")
        params = dict(p.partition("=")[::2] for p in query.split("&") if p)
        if not advertise_tags:
            raise TailnetError(400, "oauth authkeys require --advertise-tags")
        principal, _ = self.callers.issue_token(secret)
        return self.keys.create_key(
            principal,
            {
                "capabilities": {
                    "devices": {
                        "create": {
                            "reusable": False,
                            "ephemeral": params.get("ephemeral", "true") == "true",
                            "preauthorized": params.get("preauthorized", "false") == "true",
                            "tags": advertise_tags,
                        }
                    }
                }
            },
        )

    def _new_device(self, pending: PendingJoin, key: AuthKey, tags: list[str]) -> Device:
        now = self.world.now()
        v4 = addresses.free_ipv4(self.store.used_ipv4())
        node_id = f"n{random_chars(10)}CNTRL"
        while node_id in self.store.devices:
            node_id = f"n{random_chars(10)}CNTRL"
        tagged = bool(tags)
        return Device(
            id=str(secrets.randbelow(9 * 10**15) + 10**15),
            node_id=node_id,
            hostname=pending.hostname,
            name=f"{self._label(pending.hostname)}.{self.dns_suffix}",
            addresses=[str(v4), str(addresses.ipv6_for(v4))],
            tags=tags,
            authorized=key.preauthorized,
            is_ephemeral=key.ephemeral,
            user="tagged-devices" if tagged else key.owner,
            created=now,
            expires=ZERO_TIME if tagged else now + timedelta(days=180),
            key_expiry_disabled=tagged,
            machine_key=f"mkey:{secrets.token_hex(32)}",
            node_key=f"nodekey:{secrets.token_hex(32)}",
            tailnet_lock_key=f"tlpub:{secrets.token_hex(32)}",
            key_id=key.id,
            server_id=pending.server_id,
            server_name=pending.server_name,
        )

    def _label(self, hostname: str) -> str:
        return addresses.free_label(addresses.dns_label(hostname), self.store.taken_labels())

    def _go_offline(self, device: Device) -> None:
        self.timers.cancel(("reconnect", device.node_id))
        if device.connected:
            device.connected = False
            device.last_seen = self.world.now()
        if device.is_ephemeral and not self.timers.armed(("gc", device.node_id)):
            self.arm_gc(device.node_id, self.timings.ephemeral_gc)

    def arm_gc(self, node_id: str, delay: float) -> None:
        self.timers.set(("gc", node_id), delay, lambda: self._gc(node_id))

    def _reconnect(self, node_id: str) -> None:
        device = self.store.devices.get(node_id)
        if device is not None:
            device.connected = True

    def _gc(self, node_id: str) -> None:
        device = self.store.devices.get(node_id)
        if device is not None and not device.connected:
            self.store.remove(device, "ephemeral device inactive")

    def _record(
        self, server_id: int, server_name: str, outcome: str, reason: str, dev: str | None = None
    ) -> None:
        now = self.world.now()
        attempt = JoinAttempt(server_id, server_name, outcome, reason, now, dev)
        for i, old in enumerate(self.joins):
            if old.server_id == server_id and old.outcome == "pending":
                self.joins[i] = attempt
                return
        self.joins.append(attempt)
        del self.joins[:-JOINS_KEPT]
