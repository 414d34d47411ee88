"""How VMs join the simulated tailnet, driven by the world's server events, and how their devices
go offline, reconnect and are cleaned up.

- `booted` with `first_boot`: if the server's `user_data` runs `tailscale up --auth-key=...`
  (see `tailnet_cloudinit`) and no `device_never_joins` fault matches the server name, the VM
  joins `timings.join` simulated seconds later, if the key is still valid then. Otherwise it
  never joins; the reason is recorded in `joins`. A joined VM's disk gets tailscaled's state
  file (`NODE_STATE`), which snapshots copy.
- A first boot on a disk that has that file (a server created from a snapshot) whose
  `user_data` does not remove it starts tailscaled as the stored node: `timings.reconnect`
  later it is the same device, bound to the new server, and the auth key is not used; a device
  that no longer exists refuses it, and the host registers with the auth key when `tailscale
  up` runs (`tailnet_nodestate` has the rules and their sources).
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
from dataclasses import replace
from datetime import timedelta

from aura_sandbox import tailnet_addresses as addresses
from aura_sandbox import tailnet_nodestate as nodestate
from aura_sandbox.tailnet_callers import Callers
from aura_sandbox.tailnet_cloudinit import find_tailscale_up, forgets_node_state
from aura_sandbox.tailnet_devices import DeviceStore
from aura_sandbox.tailnet_keys import KeyStore
from aura_sandbox.tailnet_model import (
    NODE_STATE,
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
        files = server.disk
        state = nodestate.read(files)
        if NODE_STATE in files and forgets_node_state(server.user_data):
            del files[NODE_STATE]  # cloud-init removes it before tailscaled logs in with it
            state = None
        if up is None and state is None:
            return
        if self.world.faults.consume("device_never_joins", server_name=server.name):
            self._record(server.id, server.name, "failed", "fault device_never_joins")
            return
        join = self.timings.join_preinstalled if TAILSCALE_BINARY in files else self.timings.join
        first = self.timings.reconnect if state is not None else join
        self.schedule_join(
            PendingJoin(
                server_id=server.id,
                server_name=server.name,
                auth_key=up.auth_key if up is not None else "",
                hostname=(up.hostname if up is not None else None) or server.name,
                advertise_tags=list(up.advertise_tags) if up is not None else [],
                due=self.world.now() + timedelta(seconds=first * self.time_scale),
                node_state=state,
                up_delay=max(join - first, 0.0),
            ),
            first,
        )
        what = "tailscaled starts with the node state on the disk" if state else "tailscale up"
        self._record(server.id, server.name, "pending", f"{what} is running")

    def schedule_join(self, pending: PendingJoin, delay: float) -> None:
        self.pending[pending.server_id] = pending
        self.timers.set(("join", str(pending.server_id)), delay, lambda: self._join(pending))

    def _join(self, pending: PendingJoin) -> None:
        if self.pending.get(pending.server_id) is not pending:
            return
        del self.pending[pending.server_id]
        if pending.node_state is not None and self._rejoin(pending, pending.node_state):
            return
        try:
            key, tags = self._registration_key(pending)
        except TailnetError as exc:
            log.info("tailnet: server %s cannot join: %s", pending.server_name, exc.message)
            self._record(pending.server_id, pending.server_name, "failed", exc.message)
            return
        device = self._new_device(pending, key, tags)
        key.uses += 1
        self.store.devices[device.node_id] = device
        self._write_state(device)
        log.info("tailnet: server %s joined as %s", pending.server_name, device.name)
        self._record(pending.server_id, pending.server_name, "joined", device.name, device.node_id)

    def _rejoin(self, pending: PendingJoin, state: dict[str, str]) -> bool:
        """tailscaled logs in with the stored node; False when the caller should register it
        with the auth key now. A refused node waits for `tailscale up` (`up_delay`)."""
        device = self.store.devices.get(state["nodeId"])
        verdict, why = nodestate.judge(device, state, self.world.now())
        sid, name = pending.server_id, pending.server_name
        if verdict == nodestate.Verdict.UNKNOWN or device is None:
            if not pending.auth_key:
                self._record(sid, name, "failed", f"{why}; no auth key to log in with")
                return True
            if pending.up_delay <= 0:
                return False
            due = self.world.now() + timedelta(seconds=pending.up_delay * self.time_scale)
            self.schedule_join(replace(pending, node_state=None, due=due), pending.up_delay)
            self._record(sid, name, "pending", f"{why}: tailscale up logs in with the auth key")
            return True
        note = "auth key not used"
        if verdict == nodestate.Verdict.EXPIRED:
            try:
                key, _ = self._registration_key(pending)
            except TailnetError as exc:
                self._record(sid, name, "failed", f"{why}; re-authenticating: {exc.message}")
                return True
            key.uses += 1
            device.node_key = f"nodekey:{secrets.token_hex(32)}"
            device.expires = self.world.now() + timedelta(days=180)
            device.key_id = key.id
            note = f"re-authenticated with key {key.id}"
        self.timers.cancel(("gc", device.node_id))
        self.timers.cancel(("reconnect", device.node_id))
        device.server_id, device.server_name = sid, name
        device.connected, device.last_seen = True, None
        self._write_state(device)
        log.info("tailnet: server %s is node %s again (%s)", name, device.name, note)
        self._record(sid, name, "joined", f"{device.name}: {why} ({note})", device.node_id)
        return True

    def _write_state(self, device: Device) -> None:
        server = self.world.servers.get(device.server_id) if device.server_id else None
        if server is not None:
            nodestate.record(server.disk, device)

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
