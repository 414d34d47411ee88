"""Who calls the simulated Tailscale API: the OAuth client, its access tokens, and personal API
access tokens.

- The OAuth client (`config.tailscale_client_id` / `tailscale_client_secret`) owns the scopes
  `auth_keys` and `devices:core` and the tags `config.tailscale_oauth_tags`. `issue_token()` mints
  `tskey-api-...` access tokens valid 3600 *wall-clock* seconds (the client counts `expires_in` on
  its own clock, whatever the time scale). The client is found from its secret alone, like the
  real server. Personal API access tokens (`add_api_key`) act as a tailnet admin: every scope,
  untagged keys allowed.
- `authenticate()` raises 401 "API token invalid" for an unknown or expired token and `require()`
  403 "calling actor does not have enough permissions to perform this function" when a scope is
  missing. `devices:core` implies `devices:core:read`, `auth_keys` implies `auth_keys:read`, `all`
  implies everything, a coarse `devices` implies `devices:*` (`tailnet_model.grants`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from aura_sandbox.tailnet_model import (
    MSG_FORBIDDEN,
    MSG_UNAUTHORIZED,
    Principal,
    TailnetError,
    grants,
    random_chars,
)
from aura_sandbox.tailnet_policy import TagPolicy

TOKEN_LIFETIME = 3600
"""Seconds an OAuth access token lives (KB 1215: "expires after one hour")."""
CLIENT_SCOPES = ("auth_keys", "devices:core")


def split_list(value: str | None) -> list[str]:
    """A space- or comma-separated form field as a list."""
    return [p for p in (value or "").replace(",", " ").split() if p]


class Callers:
    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        client_tags: Iterable[str],
        policy: TagPolicy,
        wall_clock: Callable[[], datetime],
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.client_tags = list(client_tags)
        self.client_scopes = list(CLIENT_SCOPES)
        self.policy = policy
        self.wall_clock = wall_clock
        self.tokens: dict[str, Principal] = {}

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
        wanted = split_list(scope)
        missing = [s for s in wanted if not grants(self.client_scopes, s)]
        if missing:
            raise TailnetError(403, f'OAuth client cannot grant scopes "{" ".join(missing)}"')
        scopes = wanted or list(self.client_scopes)
        token_tags = self.client_tags
        if tags is not None and tags.strip():
            asked = split_list(tags)
            if not any(grants(scopes, s) for s in ("devices:core", "auth_keys")):
                raise TailnetError(400, "tags can only be requested with a devices scope")
            self.policy.check_tags(asked, self.client_tags)
            token_tags = asked
        token = f"tskey-api-k{random_chars(9)}CNTRL-{random_chars(32)}"
        principal = Principal(
            token=token,
            kind="oauth",
            scopes=scopes,
            tags=list(token_tags),
            expires=self.wall_clock() + timedelta(seconds=TOKEN_LIFETIME),
            owner=self.client_id,
        )
        self._prune()
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

    def _prune(self) -> None:
        now = self.wall_clock()
        for token, p in list(self.tokens.items()):
            if p.expires is not None and p.expires <= now:
                del self.tokens[token]
