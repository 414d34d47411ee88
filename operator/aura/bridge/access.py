"""Who is calling the status API, and what they may see: `Principal` and `authenticate`.

Three kinds of bearer token are accepted:

- an operator token (`AURA_API_TOKENS`, compared in constant time): reads everything, the fleet
  included, and writes nothing;
- a signed `customer:read` token (`tokens`): reads its one customer's Agents and streams; any
  other Agent, customer, or route answers **403**, and an Agent that does not exist answers 403
  too, so a customer cannot probe for the names of others';
- a signed `fleet:write` token: the fleet, plus the actions its phase allows, as `sub`.

A missing, unknown, expired, tampered or retired-key token is a 401. `ScopeGuard` refuses a
customer-scoped token on every route but the customer's own before routing.
"""

# No `from __future__ import annotations`: FastAPI evaluates the dependency's annotations.
import contextlib
import hmac
import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from aura.bridge import tokens

SCOPED_OUT = "this token is scoped to one customer's agents"


@dataclass(frozen=True)
class Principal:
    """The caller of one request."""

    stream_key: str
    """Whose open event streams this request counts against."""
    customer: str | None = None
    """Set for a customer-scoped token: the only customer it may read."""
    subject: str | None = None
    """Who acts, for a write token."""
    can_write: bool = False

    @property
    def fleet(self) -> bool:
        return self.customer is None

    def require_fleet(self) -> None:
        if not self.fleet:
            raise HTTPException(403, SCOPED_OUT)

    def require_customer(self, customer: str | None) -> None:
        """403 unless this principal may read `customer`'s Agents."""
        if self.customer is not None and customer != self.customer:
            raise HTTPException(403, SCOPED_OUT)

    def require_write(self) -> str:
        """The acting subject; 403 without the write scope."""
        if not self.can_write or not self.subject:
            raise HTTPException(403, "read-only token: actions need a fleet:write token")
        return self.subject


def _unauthorized(why: str) -> HTTPException:
    return HTTPException(401, why, headers={"WWW-Authenticate": "Bearer"})


def authenticate(
    credentials: HTTPAuthorizationCredentials | None,
    operator_tokens: list[bytes],
    keys: tuple[tuple[str, str], ...],
) -> Principal:
    """The principal behind `credentials`; a 401 `HTTPException` if there is none."""
    given = credentials.credentials if credentials else ""
    if given.startswith(tokens.PREFIX) and keys:
        try:
            claims = tokens.verify(keys, given)
        except tokens.TokenError as exc:
            raise _unauthorized(f"invalid bearer token: {exc}") from None
        if claims.scope == tokens.CUSTOMER_READ:
            return Principal(stream_key=f"customer:{claims.customer}", customer=claims.customer)
        return Principal(
            stream_key=f"writer:{claims.subject}", subject=claims.subject, can_write=True
        )
    raw = given.encode()
    # Check every token so the time taken says nothing about which one nearly matched.
    match = -1
    for i, token in enumerate(operator_tokens):
        if hmac.compare_digest(raw, token):
            match = i
    if not raw or match < 0:
        raise _unauthorized("missing or invalid bearer token")
    return Principal(stream_key=f"operator:{match}")


def dependency(operator_tokens: frozenset[str], keys: tuple[tuple[str, str], ...]) -> Any:
    """A FastAPI dependency yielding the request's `Principal` (OpenAPI: bearer auth)."""
    bearer = HTTPBearer(
        auto_error=False,
        description="A token from AURA_API_TOKENS, or a signed token (see aura.bridge.tokens)",
    )
    known = [t.encode() for t in operator_tokens]

    def principal(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        return authenticate(credentials, known, keys)

    return principal


# What a customer-scoped token may reach, matched on the decoded path, so `%2F` and `..`
# tricks end here as well; the routes then check the customer itself.
_CUSTOMER_ROUTES = re.compile(
    r"^/v1/agents$|^/v1/agents/[^/]+/[^/]+(/history|/events)?$|^/v1/customers/[^/]+/events$"
)


class ScopeGuard:
    """ASGI middleware: a request bearing a valid customer-scoped token for any route outside
    the customer's read routes is answered 403 before routing, public routes included (a
    scoped token grants nothing else; no 404 tells it which paths exist)."""

    def __init__(self, app: ASGIApp, keys: tuple[tuple[str, str], ...]) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.keys and not _CUSTOMER_ROUTES.match(scope["path"]):
            auth = Headers(scope=scope).get("authorization", "")
            kind, _, given = auth.partition(" ")
            if kind.lower() == "bearer" and given.startswith(tokens.PREFIX):
                with contextlib.suppress(tokens.TokenError):
                    if tokens.verify(self.keys, given).scope == tokens.CUSTOMER_READ:
                        response = JSONResponse({"detail": SCOPED_OUT}, status_code=403)
                        await response(scope, receive, send)
                        return
        await self.app(scope, receive, send)
