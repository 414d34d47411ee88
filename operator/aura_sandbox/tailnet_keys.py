"""Auth keys of the simulated tailnet: create, read, list, revoke.

- `tskey-auth-<id>-<secret>`, id like `kAb12Cd34CNTRL`; the secret is only in the create
  response. Default expiry 90 days (0 also means the default), at most 90 days. Tags follow the
  tag-owner policy (`tailnet_policy`); only auth keys can be created (OAuth clients and API
  tokens need scopes the sandbox's client lacks: 403).
- A key is *invalid* once deleted (`revoked` set), expired, or, for a single-use key, used once;
  an invalid key is no longer listed, still readable by id with `invalid: true`. Keys belong to
  the caller that made them (`Principal.key_owner`); another caller gets 404.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any

from aura_sandbox.tailnet_model import (
    MSG_FORBIDDEN,
    MSG_NOT_FOUND,
    AuthKey,
    Principal,
    TailnetError,
    random_chars,
)
from aura_sandbox.tailnet_policy import TagPolicy
from aura_sandbox.tailnet_world import WorldLike

log = logging.getLogger(__name__)

DEFAULT_KEY_EXPIRY = 90 * 86400
MAX_KEY_EXPIRY = 90 * 86400


class KeyStore:
    def __init__(self, world: WorldLike, policy: TagPolicy) -> None:
        self.world = world
        self.policy = policy
        self.keys: dict[str, AuthKey] = {}

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
        self.policy.check_caller(principal, tags)
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
        key_id = f"k{random_chars(10)}CNTRL"
        key = AuthKey(
            id=key_id,
            secret=f"tskey-auth-{key_id}-{random_chars(32)}",
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

    def by_secret(self, secret: str) -> AuthKey | None:
        """The key whose full secret is `secret` (valid or not), compared in constant time."""
        key_id = secret.removeprefix("tskey-auth-").split("-", 1)[0]
        found = self.keys.get(key_id)
        if found is None or not secrets.compare_digest(found.secret, secret):
            return None
        return found
