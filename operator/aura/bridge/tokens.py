"""Signed, expiring bearer tokens: customer-scoped reads and the fleet page's write scope.

The algorithm, so a SaaS backend can mint tokens offline (README, "Status people can see"):

    payload   = base64url(JSON {"cus": customer or absent, "exp": unix seconds,
                                "kid": key id, "scope": scope, "sub": who or absent})
    signature = base64url(HMAC-SHA256(key, "aura1." + payload))
    token     = "aura1." + payload + "." + signature

base64url without `=` padding; the JSON is any encoding of that object (the signature covers
the bytes as sent, the bridge never re-serializes). Scopes:

- `customer:read` (`cus` required): that customer's Agents, their history and streams;
- `fleet:write` (`sub` required: the person, recorded on every action): the fleet page with
  its actions. Plain operator tokens (`AURA_API_TOKENS`) read the fleet but never write.

Keys are `kid:secret` pairs (`AURA_TOKEN_KEYS`); the first mints, all verify. Rotating means
putting a new key first and keeping the previous one for one token lifetime, then dropping it:
every token signed with a dropped key is refused. A token living longer than `MAX_TTL` from
now is refused as well, so an offline minter cannot issue a token that outlives a rotation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from aura.models import CUSTOMER_ID_PATTERN

PREFIX = "aura1."
CUSTOMER_READ = "customer:read"
FLEET_WRITE = "fleet:write"
SCOPES = (CUSTOMER_READ, FLEET_WRITE)
MAX_TTL = 24 * 3600
"""Longest lifetime a token may have left; longer ones are refused as misminted."""
DEFAULT_TTL = 900
KID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
SUBJECT_PATTERN = re.compile(r"^[A-Za-z0-9@._+-]{1,128}$")
_CUSTOMER = re.compile(CUSTOMER_ID_PATTERN)
MIN_KEY_BYTES = 32


class TokenError(ValueError):
    """Why a token was refused; the message never contains the token or a key."""


@dataclass(frozen=True)
class Claims:
    """What a valid token grants."""

    scope: str
    expires: int
    kid: str
    customer: str | None = None
    subject: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_keys(value: str | None) -> tuple[tuple[str, str], ...]:
    """`kid:secret` items (comma- or newline-separated), first = current; clear errors."""
    keys: list[tuple[str, str]] = []
    for item in (value or "").replace("\n", ",").split(","):
        if not item.strip():
            continue
        kid, sep, secret = item.strip().partition(":")
        if not sep or not KID_PATTERN.match(kid):
            raise ValueError(
                "AURA_TOKEN_KEYS: each item must be `kid:secret` with a kid of 1-32 letters, "
                "digits, `_` or `-`"
            )
        if len(secret.encode()) < MIN_KEY_BYTES:
            raise ValueError(
                f"AURA_TOKEN_KEYS: key {kid!r} is shorter than {MIN_KEY_BYTES} bytes; "
                "generate one with `openssl rand -hex 32`"
            )
        if any(k == kid for k, _ in keys):
            raise ValueError(f"AURA_TOKEN_KEYS: key id {kid!r} appears twice")
        keys.append((kid, secret))
    return tuple(keys)


def _check(scope: str, customer: str | None, subject: str | None) -> None:
    if scope not in SCOPES:
        raise TokenError(f"scope must be one of {', '.join(SCOPES)}")
    if scope == CUSTOMER_READ and not (customer and _CUSTOMER.match(customer)):
        raise TokenError("scope customer:read needs `cus`, a Stripe customer id (cus_...)")
    if scope == FLEET_WRITE and not (subject and SUBJECT_PATTERN.match(subject)):
        raise TokenError("scope fleet:write needs `sub`, who acts (letters, digits, @._+-)")


def mint(
    keys: tuple[tuple[str, str], ...],
    scope: str,
    *,
    customer: str | None = None,
    subject: str | None = None,
    ttl: int = DEFAULT_TTL,
    now: float | None = None,
) -> str:
    """A token signed with the current (first) key, valid for `ttl` seconds."""
    if not keys:
        raise TokenError("no signing key configured (AURA_TOKEN_KEYS)")
    if not 0 < ttl <= MAX_TTL:
        raise TokenError(f"ttl must be between 1 and {MAX_TTL} seconds")
    _check(scope, customer, subject)
    kid, secret = keys[0]
    claims: dict[str, Any] = {"exp": int((now or time.time()) + ttl), "kid": kid, "scope": scope}
    if customer:
        claims["cus"] = customer
    if subject:
        claims["sub"] = subject
    payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    signature = hmac.new(secret.encode(), (PREFIX + payload).encode(), hashlib.sha256).digest()
    return f"{PREFIX}{payload}.{_b64(signature)}"


def verify(keys: tuple[tuple[str, str], ...], token: str, now: float | None = None) -> Claims:
    """The claims of a well-signed, unexpired token; `TokenError` otherwise."""
    if not token.startswith(PREFIX) or token.count(".") != 2:
        raise TokenError("not an Aura token")
    payload, _, signature = token[len(PREFIX) :].partition(".")
    try:
        claims = json.loads(_unb64(payload))
        given = _unb64(signature)
    except (binascii.Error, ValueError):
        raise TokenError("malformed token") from None
    if not isinstance(claims, dict):
        raise TokenError("malformed token")
    secret = dict(keys).get(str(claims.get("kid")))
    if secret is None:
        raise TokenError("token signed with an unknown or retired key")
    expected = hmac.new(secret.encode(), (PREFIX + payload).encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, given):
        raise TokenError("bad token signature")
    expires = claims.get("exp")
    if not isinstance(expires, int) or isinstance(expires, bool):
        raise TokenError("token has no expiry")
    at = now or time.time()
    if expires <= at:
        raise TokenError("token expired")
    if expires > at + MAX_TTL:
        raise TokenError(f"token lives longer than {MAX_TTL}s; mint a shorter one")
    scope, customer, subject = claims.get("scope"), claims.get("cus"), claims.get("sub")
    if not isinstance(scope, str) or not isinstance(customer, str | None):
        raise TokenError("malformed token")
    if not isinstance(subject, str | None):
        raise TokenError("malformed token")
    _check(scope, customer, subject)
    return Claims(scope, expires, str(claims["kid"]), customer, subject)


def main(argv: list[str] | None = None) -> int:
    """`python -m aura.bridge.tokens SCOPE [--customer C] [--subject S] [--ttl N]`: print a
    token signed with the first key of `AURA_TOKEN_KEYS` (for write tokens of the team)."""
    import argparse
    import os

    parser = argparse.ArgumentParser(prog="python -m aura.bridge.tokens", description=main.__doc__)
    parser.add_argument("scope", choices=SCOPES)
    parser.add_argument("--customer")
    parser.add_argument("--subject")
    parser.add_argument("--ttl", type=int, default=DEFAULT_TTL)
    args = parser.parse_args(argv)
    try:
        keys = parse_keys(os.environ.get("AURA_TOKEN_KEYS"))
        print(mint(keys, args.scope, customer=args.customer, subject=args.subject, ttl=args.ttl))
    except ValueError as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
