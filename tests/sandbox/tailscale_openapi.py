"""Check every sandbox Tailscale response: the shared OpenAPI validator plus the spec's gaps.

`validate(method, path, status, raw_body)` raises `AssertionError` when:

- a JSON body the spec describes does not validate (`tests.sandbox.openapi.OpenApiValidator`
  over the vendor's tailscale-api-openapi.yaml in $AURA_SPECS_DIR: JSON Schema 2020-12,
  `$ref`s resolved);
- an error status (>= 400) answers with anything but the spec's `Error` schema
  `{"message": ...}`, even when the operation does not list that status (401, 403, 429);
- a success the operation does not describe at all, or an operation the spec lacks;
- the spec describes a success without a body (200 on DELETE) and the body is neither empty
  nor `{}` (the older official docs give `{}` for authorize and set-tags).

The token endpoint is missing from the spec copy (reference section 1), so its success body is
checked against `TOKEN_SCHEMA`, written from the reference's real example. `stats` counts
checked responses per kind; `validator.validated` counts those the spec itself described.
"""

from __future__ import annotations

import collections
import json
from typing import Any

from jsonschema import Draft202012Validator

from tests.sandbox.openapi import TAILSCALE_SPEC_FILE, OpenApiValidator, optional_spec

PREFIX = "/api/v2"

TOKEN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["access_token", "token_type", "expires_in"],
    "properties": {
        "access_token": {"type": "string", "pattern": "^tskey-api-"},
        "token_type": {"const": "Bearer"},
        "expires_in": {"type": "integer", "minimum": 1},
        "scope": {"type": "string"},
        "tags": {"type": "string"},
    },
}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"type": "string"}},
}

_validator: OpenApiValidator | None = None
stats: collections.Counter[str] = collections.Counter()


def spec_validator() -> OpenApiValidator:
    """The Tailscale spec's validator, built on first use (checks nothing without the spec)."""
    global _validator
    if _validator is None:
        _validator = OpenApiValidator(optional_spec(TAILSCALE_SPEC_FILE))
    return _validator


def _check(schema: dict[str, Any], body: Any, what: str) -> None:
    errors = list(Draft202012Validator(schema).iter_errors(body))
    if errors:
        raise AssertionError(f"{what}: {errors[0].message}; body: {body!r}")


def validate(method: str, path: str, status: int, raw: bytes) -> None:
    """Check one response (see the module docstring)."""
    what = f"{method} {path} -> {status}"
    path = path.split("?", 1)[0]
    try:
        body: Any = json.loads(raw) if raw.strip() else None
    except ValueError as exc:
        raise AssertionError(f"{what}: body is not JSON: {raw[:200]!r}") from exc
    if path == f"{PREFIX}/oauth/token" and status < 400:
        _check(TOKEN_SCHEMA, body, what)
        stats["token endpoint (reference schema)"] += 1
        return
    described = body is not None and spec_validator().validate(method, path, status, body)
    if described:
        stats["spec"] += 1
    if status >= 400:
        _check(ERROR_SCHEMA, body, what)
        stats["error envelope"] += 1
        return
    validator = spec_validator()
    if described or not validator.available:
        return
    template = validator.template_for(path)
    operation = validator.spec["paths"][template].get(method.lower()) if template else None
    if operation is None:
        raise AssertionError(f"{what}: the spec has no such operation")
    if str(status) not in operation.get("responses", {}):
        raise AssertionError(f"{what}: the spec does not describe status {status}")
    if body not in (None, {}):
        raise AssertionError(f"{what}: the spec describes no body, got {body!r}")
    stats["spec (no body)"] += 1
