"""The simulated tailnet: OAuth client and tokens, auth keys, devices, and VMs joining it.

`Tailnet` holds all Tailscale state of one sandbox and every rule the fake API enforces; the
HTTP layer (`tailscale.py`) only parses requests and renders what this module returns or
raises. Rules follow Tailscale's API v2 documentation and the behaviour its users report:

Callers and permissions
- The OAuth client (`config.tailscale_client_id` / `tailscale_client_secret`) owns the
  scopes `auth_keys` and `devices:core` and the tags `config.tailscale_oauth_tags`.
  `issue_token()` mints `tskey-api-...` access tokens valid 3600 *wall-clock* seconds (the
  client counts `expires_in` on its own clock, whatever the time scale). The client is found
  from its secret alone, like the real server. Personal API access tokens (`add_api_key`)
  act as a tailnet admin: every scope, untagged keys allowed.
- `authenticate()` raises 401 "API token invalid" for an unknown or expired token and
  `require()` 403 "calling actor does not have enough permissions to perform this function"
  when a scope is missing. `devices:core` implies `devices:core:read`, `auth_keys` implies
  `auth_keys:read`, `all` implies everything, a coarse `devices` implies `devices:*`.
- Tag ownership comes from a policy (`tag_owners`, like the `tagOwners` of a policy file).
  Default: `{"tag:aura": [], "tag:aura-agent": ["tag:aura"]}` plus every OAuth tag. A key (or
  device tag change) made with an OAuth token must carry tags (spec `KeyCapabilities`). A tag
  owned by one of the token's tags is always allowed; one of the token's own tags only when
  all of them are asked for (a strict subset is rejected: terraform-provider-tailscale#437).
  So with the default client, `["tag:aura-agent"]` and `["tag:aura", "tag:aura-agent"]` work
  and `["tag:aura"]` alone gives 400 "requested tags [tag:aura] are invalid or not permitted".

Keys
- `tskey-auth-<id>-<secret>`, id like `kAb12Cd34CNTRL`; the secret is only in the create
  response. Default expiry 90 days (0 also means the default), at most 90 days. A key is
  *invalid* once deleted (`revoked` set), expired, or, for a single-use key, used once; an
  invalid key is no longer listed, still readable by id with `invalid: true`.

Devices and enrollment (server listener events from the world)
- `booted` with `first_boot`: if the server's `user_data` runs `tailscale up --auth-key=...`
  (see `tailnet_cloudinit`) and no `device_never_joins` fault matches the server name, the VM
  joins `timings.join` simulated seconds later, if the key is still valid then. Otherwise it
  never joins; the reason is recorded in `joins_summary()`.
- The device: `hostname` is `--hostname` (else the server name) as the VM reports it; `name`
  is the MagicDNS FQDN whose first label gets `-1`, `-2`, ... when another device (even an
  offline ephemeral one) holds it. Tags are `--advertise-tags` if given (each must be a key tag
  or owned by one), else the key's; `isEphemeral` from the key; `authorized` is the key's
  `preauthorized` (the sandbox tailnet has device approval on). Addresses: a free 100.64.0.0/10
  address and `fd7a:115c:a1e0::` plus the same 32 bits, as Tailscale assigns them.
- `connectedToControl` is true while the server runs; `lastSeen` is absent while connected
  (client-go-v2: "Will be nil if ConnectedToControl is true") and frozen at the moment the
  server went off. A reboot reconnects the same device after `timings.reconnect`.
- An ephemeral device is removed `timings.ephemeral_gc` simulated seconds after it went
  offline (power off or server deleted), unless it reconnects first. Non-ephemeral devices
  stay, offline, until deleted through the API.

Hand-written: no library or container simulates the Tailscale control plane's public API.
State persists through `to_dict()` / `load_dict()` (pending joins and clean-ups included).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import secrets
import string
from collections.abc import Callable, Iterable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from aura_sandbox.tailnet_cloudinit import TailscaleUp, find_tailscale_up
from aura_sandbox.tailnet_model import (
    MSG_FORBIDDEN,
    MSG_NO_DEVICE,
    MSG_NO_TAILNET,
    MSG_NOT_FOUND,
    MSG_UNAUTHORIZED,
    ZERO_TIME,
    AuthKey,
    Device,
    JoinAttempt,
    PendingJoin,
    Principal,
    TailnetError,
    TailnetTimings,
    grants,
    parse_time,
    rfc3339,
    tags_error,
)

log = logging.getLogger(__name__)

TOKEN_LIFETIME = 3600
"""Seconds an OAuth access token lives (KB 1215: "expires after one hour")."""
DEFAULT_KEY_EXPIRY = 90 * 86400
MAX_KEY_EXPIRY = 90 * 86400
CLIENT_SCOPES = ("auth_keys", "devices:core")
DEFAULT_TAG_OWNERS: dict[str, list[str]] = {"tag:aura": [], "tag:aura-agent": ["tag:aura"]}

_ALNUM = string.ascii_letters + string.digits
_IPV4_POOL = ipaddress.IPv4Network("100.64.0.0/10")
_IPV4_RESERVED = (
    ipaddress.IPv4Network("100.100.0.0/24"),  # quad-100 services (100.100.100.100 is DNS)
    ipaddress.IPv4Network("100.100.100.0/24"),
    ipaddress.IPv4Network("100.115.92.0/23"),  # ChromeOS; Tailscale never hands these out
)
_IPV6_BASE = int(ipaddress.IPv6Address("fd7a:115c:a1e0::"))


# What this module needs from the world (aura_sandbox.world); structural, so tests may stub it.


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class ServerLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def user_data(self) -> str | None: ...
    @property
    def first_boot(self) -> bool: ...


class FaultsLike(Protocol):
    def consume(self, kind: str, **match: Any) -> object | None: ...


class WorldLike(Protocol):
    @property
    def faults(self) -> FaultsLike: ...
    def now(self) -> datetime: ...
    def mark_dirty(self) -> None: ...
    def schedule(self, delay: float, callback: Callable[[], Any]) -> Cancellable: ...


def _rand(n: int, alphabet: str = _ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _dns_label(hostname: str) -> str:
    """The MagicDNS label Tailscale derives from a hostname (lower case, [a-z0-9-])."""
    label = "".join(c if c.isascii() and (c.isalnum() or c == "-") else "-" for c in hostname)
    return label.lower().strip("-")[:63] or "localhost"


class Tailnet:
    """All Tailscale state of one sandbox; see the module docstring for the rules."""

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
        self.client_id = client_id
        self.client_secret = client_secret
        self.client_tags = list(client_tags)
        self.client_scopes = list(CLIENT_SCOPES)
        self.time_scale = time_scale
        owners = dict(DEFAULT_TAG_OWNERS if tag_owners is None else tag_owners)
        for tag in self.client_tags:
            owners.setdefault(tag, [])
        self.tag_owners = owners
        self.timings = timings or TailnetTimings()
        self.wall_clock = wall_clock or (lambda: datetime.now(UTC))
        digest = hashlib.sha256(tailnet.encode()).hexdigest()
        self.dns_suffix = tailnet if tailnet.endswith(".ts.net") else f"tail{digest[:4]}.ts.net"
        self.tokens: dict[str, Principal] = {}
        self.keys: dict[str, AuthKey] = {}
        self.devices: dict[str, Device] = {}
        self.pending: dict[int, PendingJoin] = {}
        self.joins: list[JoinAttempt] = []
        self._timers: dict[tuple[str, str], Cancellable] = {}

    # --- Callers ---------------------------------------------------------------------------

    def issue_token(
        self, secret: str, scope: str | None = None, tags: str | None = None
    ) -> tuple[Principal, int]:
        """An access token for the OAuth client with `secret`; returns it and its lifetime.

        `scope` and `tags` are the optional space- or comma-separated form fields. Raises
        401 for a wrong secret, 403 for a scope the client does not have, 400 for tags it may
        not request.
        """
        if not secret or not secrets.compare_digest(secret, self.client_secret):
            raise TailnetError(401, MSG_UNAUTHORIZED)
        wanted = _split_list(scope)
        missing = [s for s in wanted if not grants(self.client_scopes, s)]
        if missing:
            raise TailnetError(403, f'OAuth client cannot grant scopes "{" ".join(missing)}"')
        scopes = wanted or list(self.client_scopes)
        token_tags = self.client_tags
        if tags is not None and tags.strip():
            asked = _split_list(tags)
            if not any(grants(scopes, s) for s in ("devices:core", "auth_keys")):
                raise TailnetError(400, "tags can only be requested with a devices scope")
            self.check_tags(asked, self.client_tags)
            token_tags = asked
        token = f"tskey-api-k{_rand(9)}CNTRL-{_rand(32)}"
        principal = Principal(
            token=token,
            kind="oauth",
            scopes=scopes,
            tags=list(token_tags),
            expires=self.wall_clock() + timedelta(seconds=TOKEN_LIFETIME),
            owner=self.client_id,
        )
        self._prune_tokens()
        self.tokens[token] = principal
        return principal, TOKEN_LIFETIME

    def add_api_key(self, token: str, user: str = "admin@example.com") -> Principal:
        """Register a personal API access token (`tskey-api-...`) acting as admin `user`."""
        principal = Principal(token, "user", ["all"], [], None, user)
        self.tokens[token] = principal
        return principal

    def authenticate(self, token: str | None) -> Principal:
        """The caller behind `token`; 401 if unknown or expired, 403 for a client secret."""
        if token and secrets.compare_digest(token, self.client_secret):
            # The real API answers a client secret used as a token this way (tailscale#15969).
            raise TailnetError(403, MSG_FORBIDDEN)
        principal = self.tokens.get(token or "")
        if principal is None:
            raise TailnetError(401, MSG_UNAUTHORIZED)
        if principal.expires is not None and self.wall_clock() >= principal.expires:
            del self.tokens[principal.token]
            raise TailnetError(401, MSG_UNAUTHORIZED)
        return principal

    @staticmethod
    def require(principal: Principal, scope: str) -> None:
        """403 unless `principal` holds `scope`."""
        if not grants(principal.scopes, scope):
            raise TailnetError(403, MSG_FORBIDDEN)

    def resolve_tailnet(self, name: str) -> None:
        """404 unless `name` is `-` or this tailnet's organization name."""
        if name not in ("-", self.tailnet):
            raise TailnetError(404, MSG_NO_TAILNET)

    def check_tags(self, asked: list[str], owner_tags: list[str]) -> None:
        """400 unless a tailnet-owned caller carrying `owner_tags` may apply `asked`: each tag
        is owned by one of `owner_tags`, or is one of them and all of them are asked for."""
        full_set = set(owner_tags) <= set(asked)
        for tag in asked:
            if tag not in self.tag_owners:
                raise tags_error(asked)
            owned = any(o in owner_tags for o in self.tag_owners[tag])
            if not owned and not (tag in owner_tags and full_set):
                raise tags_error(asked)
        if not asked:
            raise tags_error(asked)

    def _check_caller_tags(self, principal: Principal, tags: list[str]) -> None:
        if principal.kind == "oauth":
            self.check_tags(tags, principal.tags)
        elif any(t not in self.tag_owners for t in tags):
            raise tags_error(tags)

    def _prune_tokens(self) -> None:
        now = self.wall_clock()
        for token, p in list(self.tokens.items()):
            if p.expires is not None and p.expires <= now:
                del self.tokens[token]

    # --- Keys ------------------------------------------------------------------------------

    def create_key(self, principal: Principal, body: Any) -> AuthKey:
        """A new auth key from a `createAuthKey` request body (already JSON-decoded)."""
        if not isinstance(body, dict):
            raise TailnetError(400, "invalid request body")
        key_type = body.get("keyType", "auth")
        if key_type not in ("auth", "", None):
            # Creating OAuth clients or API tokens needs scopes the sandbox client lacks.
            raise TailnetError(403, MSG_FORBIDDEN)
        caps = body.get("capabilities")
        devices = caps.get("devices") if isinstance(caps, dict) else None
        if not isinstance(devices, dict):
            raise TailnetError(400, "capabilities.devices is required")
        create = devices.get("create") or {}
        if not isinstance(create, dict):
            raise TailnetError(400, "capabilities.devices.create must be an object")
        flags: dict[str, bool] = {}
        for name in ("reusable", "ephemeral", "preauthorized"):
            value = create.get(name, False)
            if not isinstance(value, bool):
                raise TailnetError(400, f"capabilities.devices.create.{name} must be a boolean")
            flags[name] = value
        tags = create.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise TailnetError(400, "capabilities.devices.create.tags must be a list of strings")
        self._check_caller_tags(principal, tags)
        expiry = body.get("expirySeconds") or DEFAULT_KEY_EXPIRY
        if isinstance(expiry, bool) or not isinstance(expiry, int | float) or expiry < 0:
            raise TailnetError(400, "expirySeconds must be a non-negative number")
        if expiry > MAX_KEY_EXPIRY:
            raise TailnetError(400, "expirySeconds must be at most 90 days")
        description = body.get("description") or ""
        if not isinstance(description, str) or len(description) > 50:
            raise TailnetError(400, "description must be at most 50 characters")
        if any(not (c.isascii() and (c.isalnum() or c in "-_ ")) for c in description):
            raise TailnetError(400, "description may only hold letters, digits, '-', '_', ' '")
        now = self.world.now()
        key_id = f"k{_rand(10)}CNTRL"
        key = AuthKey(
            id=key_id,
            secret=f"tskey-auth-{key_id}-{_rand(32)}",
            created=now,
            expires=now + timedelta(seconds=float(expiry)),
            owner=principal.key_owner,
            tags=list(dict.fromkeys(tags)),
            description=description,
            reusable=flags["reusable"],
            ephemeral=flags["ephemeral"],
            preauthorized=flags["preauthorized"],
        )
        self.keys[key.id] = key
        log.info("tailnet: key %s created (tags %s)", key.id, key.tags)
        return key

    def get_key(self, principal: Principal, key_id: str) -> AuthKey:
        """The key `key_id` owned by the caller (valid or not); 404 otherwise."""
        key = self.keys.get(key_id)
        if key is None or key.owner != principal.key_owner:
            raise TailnetError(404, MSG_NOT_FOUND)
        return key

    def list_keys(self, principal: Principal) -> list[AuthKey]:
        """The caller's keys that are still valid, oldest first."""
        now = self.world.now()
        return [
            k
            for k in self.keys.values()
            if k.owner == principal.key_owner and k.invalid_reason(now) is None
        ]

    def delete_key(self, principal: Principal, key_id: str) -> None:
        """Revoke a key; 404 for an unknown or already revoked one."""
        key = self.get_key(principal, key_id)
        if key.revoked is not None:
            raise TailnetError(404, MSG_NOT_FOUND)
        key.revoked = self.world.now()

    # --- Devices ---------------------------------------------------------------------------

    def find_device(self, device_id: str) -> Device:
        """The device with this `nodeId` or legacy numeric `id`; 404 otherwise."""
        device = self.devices.get(device_id)
        if device is None:
            device = next((d for d in self.devices.values() if d.id == device_id), None)
        if device is None:
            raise TailnetError(404, MSG_NO_DEVICE)
        return device

    def list_devices(self, filters: dict[str, list[str]]) -> list[Device]:
        """Devices matching every filter: exact match on a top-level property (booleans as
        `true`/`false`), membership for list properties (`tags=a&tags=b`: both tags)."""
        result = []
        for device in self.devices.values():
            rendered = device.to_api(all_fields=True)
            if all(_matches(rendered, k, vs) for k, vs in filters.items()):
                result.append(device)
        return result

    def delete_device(self, device_id: str) -> None:
        device = self.find_device(device_id)
        self._remove_device(device, "deleted through the API")

    def set_authorized(self, device_id: str, authorized: bool) -> None:
        self.find_device(device_id).authorized = authorized

    def set_tags(self, principal: Principal, device_id: str, tags: list[str]) -> None:
        device = self.find_device(device_id)
        self._check_caller_tags(principal, tags)
        device.tags = list(dict.fromkeys(tags))
        device.key_expiry_disabled = device.key_expiry_disabled or bool(tags)

    def _remove_device(self, device: Device, why: str) -> None:
        self.devices.pop(device.node_id, None)
        self._cancel(("gc", device.node_id))
        self._cancel(("reconnect", device.node_id))
        log.info("tailnet: device %s (%s) removed: %s", device.node_id, device.name, why)

    # --- Enrollment: the world's server events ---------------------------------------------

    def on_server_event(self, event: str, server: ServerLike) -> None:
        """Listener for the world: `booted`, `powered_off`, `deleted` (others are ignored)."""
        device = self._device_of(server.id)
        if event == "booted":
            if device is not None:
                self._cancel(("gc", device.node_id))
                self._set_timer(
                    ("reconnect", device.node_id),
                    self.timings.reconnect,
                    lambda: self._reconnect(device.node_id),
                )
            elif server.first_boot:
                self._plan_join(server)
        elif event in ("powered_off", "deleted"):
            if self.pending.pop(server.id, None) is not None:
                self._cancel(("join", str(server.id)))
                self._record(server.id, server.name, "failed", f"server {event} before joining")
            if device is not None:
                self._go_offline(device)
                if event == "deleted":
                    device.server_id = None

    def _device_of(self, server_id: int) -> Device | None:
        return next((d for d in self.devices.values() if d.server_id == server_id), None)

    def _plan_join(self, server: ServerLike) -> None:
        up = find_tailscale_up(server.user_data)
        if up is None:
            return
        if self.world.faults.consume("device_never_joins", server_name=server.name):
            self._record(server.id, server.name, "failed", "fault device_never_joins")
            return
        self._schedule_join(
            PendingJoin(
                server_id=server.id,
                server_name=server.name,
                auth_key=up.auth_key,
                hostname=up.hostname or server.name,
                advertise_tags=list(up.advertise_tags),
                due=self.world.now() + timedelta(seconds=self.timings.join * self.time_scale),
            ),
            self.timings.join,
        )
        self._record(server.id, server.name, "pending", "tailscale up is running")

    def _schedule_join(self, pending: PendingJoin, delay: float) -> None:
        self.pending[pending.server_id] = pending
        self._set_timer(("join", str(pending.server_id)), delay, lambda: self._join(pending))

    def _join(self, pending: PendingJoin) -> None:
        self._timers.pop(("join", str(pending.server_id)), None)
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
        self.devices[device.node_id] = device
        log.info("tailnet: server %s joined as %s", pending.server_name, device.name)
        self._record(pending.server_id, pending.server_name, "joined", device.name, device.node_id)

    def _registration_key(self, pending: PendingJoin) -> tuple[AuthKey, list[str]]:
        """The key a VM registers with and the tags its device gets; 400 if it cannot."""
        secret = pending.auth_key
        if secret.startswith("tskey-client-"):
            key = self._key_from_client_secret(secret, pending.advertise_tags)
        else:
            key_id = secret.removeprefix("tskey-auth-").split("-", 1)[0]
            found = self.keys.get(key_id)
            if found is None or not secrets.compare_digest(found.secret, secret):
                raise TailnetError(400, "invalid key: API key not valid")
            key = found
        reason = key.invalid_reason(self.world.now())
        if reason is not None:
            raise TailnetError(400, f"invalid key: API key {key.id} not valid ({reason})")
        tags = pending.advertise_tags or key.tags
        if pending.advertise_tags and key.tags:
            owned = {t for t in pending.advertise_tags if t in key.tags} | {
                t
                for t in pending.advertise_tags
                if any(o in key.tags for o in self.tag_owners.get(t, []))
            }
            if owned != set(pending.advertise_tags):
                raise tags_error(pending.advertise_tags)
        elif any(t not in self.tag_owners for t in tags):
            raise tags_error(tags)
        return key, list(dict.fromkeys(tags))

    def _key_from_client_secret(self, value: str, advertise_tags: list[str]) -> AuthKey:
        """`--auth-key=tskey-client-...?ephemeral=..&preauthorized=..`: the node mints a key
        itself (feature/oauthkey: ephemeral defaults true, preauthorized false)."""
        secret, _, query = value.partition("?")
        params = dict(p.partition("=")[::2] for p in query.split("&") if p)
        if not advertise_tags:
            raise TailnetError(400, "oauth authkeys require --advertise-tags")
        principal, _ = self.issue_token(secret)
        return self.create_key(
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
        v4 = self._free_ipv4()
        v6 = ipaddress.IPv6Address(_IPV6_BASE + int(v4))
        node_id = f"n{_rand(10)}CNTRL"
        while node_id in self.devices:
            node_id = f"n{_rand(10)}CNTRL"
        tagged = bool(tags)
        return Device(
            id=str(secrets.randbelow(9 * 10**15) + 10**15),
            node_id=node_id,
            hostname=pending.hostname,
            name=f"{self._free_label(_dns_label(pending.hostname))}.{self.dns_suffix}",
            addresses=[str(v4), str(v6)],
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

    def _free_label(self, label: str) -> str:
        taken = {d.name.split(".", 1)[0] for d in self.devices.values()}
        if label not in taken:
            return label
        n = 1
        while f"{label}-{n}" in taken:
            n += 1
        return f"{label}-{n}"

    def _free_ipv4(self) -> ipaddress.IPv4Address:
        used = {d.addresses[0] for d in self.devices.values()}
        while True:
            candidate = _IPV4_POOL[secrets.randbelow(_IPV4_POOL.num_addresses - 2) + 1]
            if candidate.packed[3] in (0, 255) or str(candidate) in used:
                continue
            if not any(candidate in net for net in _IPV4_RESERVED):
                return candidate

    def _go_offline(self, device: Device) -> None:
        self._cancel(("reconnect", device.node_id))
        if device.connected:
            device.connected = False
            device.last_seen = self.world.now()
        if device.is_ephemeral and ("gc", device.node_id) not in self._timers:
            self._arm_gc(device.node_id, self.timings.ephemeral_gc)

    def _arm_gc(self, node_id: str, delay: float) -> None:
        self._set_timer(("gc", node_id), delay, lambda: self._gc(node_id))

    def _reconnect(self, node_id: str) -> None:
        self._timers.pop(("reconnect", node_id), None)
        device = self.devices.get(node_id)
        if device is not None:
            device.connected = True

    def _gc(self, node_id: str) -> None:
        self._timers.pop(("gc", node_id), None)
        device = self.devices.get(node_id)
        if device is not None and not device.connected:
            self._remove_device(device, "ephemeral device inactive")

    def _set_timer(self, name: tuple[str, str], delay: float, fn: Callable[[], None]) -> None:
        self._cancel(name)
        self._timers[name] = self.world.schedule(delay, fn)

    def _cancel(self, name: tuple[str, str]) -> None:
        handle = self._timers.pop(name, None)
        if handle is not None:
            handle.cancel()

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
        del self.joins[:-200]

    # --- Admin views and persistence -------------------------------------------------------

    def summary(self) -> dict[str, int]:
        """Counts for `GET /admin/world`."""
        now = self.world.now()
        return {
            "devices": len(self.devices),
            "devices_connected": sum(d.connected for d in self.devices.values()),
            "keys_valid": sum(k.invalid_reason(now) is None for k in self.keys.values()),
            "joins_pending": len(self.pending),
        }

    def devices_summary(self) -> list[dict[str, Any]]:
        """Every device, as the API renders it (all fields) plus the server it runs on."""
        return [
            d.to_api(all_fields=True) | {"serverId": d.server_id, "serverName": d.server_name}
            for d in self.devices.values()
        ]

    def keys_summary(self) -> list[dict[str, Any]]:
        """Every key ever created, without secrets, with why it is invalid (if it is)."""
        now = self.world.now()
        return [
            k.to_api(now)
            | {"owner": k.owner, "uses": k.uses, "invalidReason": k.invalid_reason(now)}
            for k in self.keys.values()
        ]

    def joins_summary(self) -> list[dict[str, Any]]:
        """Recent join attempts: which servers joined, are joining, or why they never will."""
        return [asdict(j) | {"at": rfc3339(j.at)} for j in self.joins]

    def to_dict(self) -> dict[str, Any]:
        def dump(obj: Any) -> dict[str, Any]:
            return {
                k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(obj).items()
            }

        return {
            "tokens": [dump(p) for p in self.tokens.values()],
            "keys": [dump(k) for k in self.keys.values()],
            "devices": [dump(d) for d in self.devices.values()],
            "pending": [dump(p) for p in self.pending.values()],
            "joins": [dump(j) for j in self.joins],
        }

    def load_dict(self, data: dict[str, Any]) -> None:
        """Replace the state with `data` from `to_dict()`, re-arming joins and clean-ups."""
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()

        def times(d: dict[str, Any], *names: str) -> dict[str, Any]:
            return d | {n: parse_time(d.get(n)) for n in names}

        self.tokens = {p["token"]: Principal(**times(p, "expires")) for p in data.get("tokens", [])}
        self.keys = {
            k["id"]: AuthKey(**times(k, "created", "expires", "revoked"))
            for k in data.get("keys", [])
        }
        self.devices = {
            d["node_id"]: Device(**times(d, "created", "expires", "last_seen"))
            for d in data.get("devices", [])
        }
        self.joins = [JoinAttempt(**times(j, "at")) for j in data.get("joins", [])]
        self.pending = {}
        now = self.world.now()
        for raw in data.get("pending", []):
            pending = PendingJoin(**times(raw, "due"))
            self._schedule_join(pending, self._simulated_until(pending.due, now))
        for device in self.devices.values():
            if device.is_ephemeral and not device.connected and device.last_seen is not None:
                due = device.last_seen + timedelta(
                    seconds=self.timings.ephemeral_gc * self.time_scale
                )
                self._arm_gc(device.node_id, self._simulated_until(due, now))

    def _simulated_until(self, due: datetime, now: datetime) -> float:
        """Simulated seconds from `now` to the world time `due` (never negative)."""
        wall = max((due - now).total_seconds(), 0.0)
        return wall / self.time_scale if self.time_scale > 0 else 0.0


def _split_list(value: str | None) -> list[str]:
    return [p for p in (value or "").replace(",", " ").split() if p]


def _matches(rendered: dict[str, Any], key: str, values: list[str]) -> bool:
    """One device-list filter. Unknown keys are ignored (an assumption: no source says)."""
    if key not in rendered:
        return True
    actual = rendered[key]
    if isinstance(actual, dict):
        raise TailnetError(400, f"cannot filter on {key}: it is not a simple field")
    for value in values:
        if isinstance(actual, list):
            if value not in actual:
                return False
        elif isinstance(actual, bool):
            if value.lower() != str(actual).lower():
                return False
        elif str(actual) != value:
            return False
    return True


__all__ = [
    "DEFAULT_TAG_OWNERS",
    "TOKEN_LIFETIME",
    "Tailnet",
    "TailscaleUp",
    "WorldLike",
]
