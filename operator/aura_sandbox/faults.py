"""Faults injected on purpose, for the next N matching events or with a probability.

A `Fault` has a `kind`, optional match criteria and a budget:

- criteria: `method` (HTTP method, exact), `path` (regex searched in the request path),
  `server_name` (exact), `command` (action command, e.g. `start_server`). A criterion that is
  set must be present and equal in the event; unset criteria match anything.
- budget: `count` (the next N matches, default 1) or `probability` (0..1, unlimited uses).

Kinds and who consumes them:

| kind | consumer | effect |
| --- | --- | --- |
| `http_error` | request middleware | answer `status` (default 503) with `code`/`message` |
| `rate_limit` | request middleware | 429 `rate_limit_exceeded` |
| `timeout` | request middleware | hold the request `delay` s (default 30), then hang up |
| `latency` | request middleware | wait `delay` s, then serve normally |
| `locked` | request middleware | 423 `locked` |
| `response_lost` | request middleware | perform the request, drop the connection unanswered |
| `action_error` | Hetzner actions | the action ends `error` with `code`/`message` |
| `server_never_boots` | Hetzner servers | the server stays `starting` forever |
| `shutdown_ignored` | Hetzner servers | an ACPI shutdown succeeds but the server stays on |
| `device_never_joins` | Tailscale side | the server's device never appears in the tailnet |

`FaultRegistry.consume(kind, **match)` is the one entry point: it returns the fault (and uses
one unit of its budget) or None. It is not thread-safe; like the rest of the world it runs on
the event loop.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

KINDS = frozenset(
    {
        "http_error",
        "rate_limit",
        "timeout",
        "latency",
        "locked",
        "response_lost",
        "action_error",
        "server_never_boots",
        "shutdown_ignored",
        "device_never_joins",
    }
)
HTTP_KINDS = frozenset(
    {"http_error", "rate_limit", "timeout", "latency", "locked", "response_lost"}
)
MATCH_KEYS = ("method", "path", "server_name", "command")


class FaultError(ValueError):
    """A fault specification is invalid."""


@dataclass
class Fault:
    """One injected fault; see the module docstring for fields and kinds."""

    id: int
    kind: str
    method: str | None = None
    path: str | None = None
    server_name: str | None = None
    command: str | None = None
    count: int | None = 1
    probability: float | None = None
    status: int | None = None
    code: str | None = None
    message: str | None = None
    delay: float | None = None
    hits: int = 0
    _path_re: re.Pattern[str] | None = field(default=None, repr=False)

    def matches(self, match: dict[str, Any]) -> bool:
        if self.method is not None and str(match.get("method", "")).upper() != self.method:
            return False
        if self._path_re is not None:
            path = match.get("path")
            if path is None or not self._path_re.search(str(path)):
                return False
        if self.server_name is not None and match.get("server_name") != self.server_name:
            return False
        return self.command is None or match.get("command") == self.command

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "method": self.method,
            "path": self.path,
            "server_name": self.server_name,
            "command": self.command,
            "count": self.count,
            "probability": self.probability,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "delay": self.delay,
            "hits": self.hits,
        }


class FaultRegistry:
    """The active faults of one world."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._faults: list[Fault] = []
        self._next_id = 1
        self._rng = rng or random.Random()

    def __bool__(self) -> bool:
        return bool(self._faults)

    def add(self, kind: str, **spec: Any) -> Fault:
        """Register a fault. Raises FaultError on an unknown kind or field."""
        if kind not in KINDS:
            raise FaultError(f"unknown fault kind {kind!r}; known: {', '.join(sorted(KINDS))}")
        allowed = {*MATCH_KEYS, "count", "probability", "status", "code", "message", "delay"}
        unknown = set(spec) - allowed
        if unknown:
            raise FaultError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        probability = spec.get("probability")
        count = spec.get("count")
        if probability is not None:
            probability = float(probability)
            if not 0.0 <= probability <= 1.0:
                raise FaultError("probability must be between 0 and 1")
            count = None
        else:
            count = 1 if count is None else int(count)
            if count < 1:
                raise FaultError("count must be at least 1")
        path = spec.get("path")
        try:
            path_re = re.compile(path) if path else None
        except re.error as exc:
            raise FaultError(f"invalid path regex: {exc}") from exc
        fault = Fault(
            id=self._next_id,
            kind=kind,
            method=spec["method"].upper() if spec.get("method") else None,
            path=path,
            server_name=spec.get("server_name"),
            command=spec.get("command"),
            count=count,
            probability=probability,
            status=int(spec["status"]) if spec.get("status") is not None else None,
            code=spec.get("code"),
            message=spec.get("message"),
            delay=float(spec["delay"]) if spec.get("delay") is not None else None,
            _path_re=path_re,
        )
        self._next_id += 1
        self._faults.append(fault)
        return fault

    def consume(self, kind: str, **match: Any) -> Fault | None:
        """The first active fault of `kind` matching `match`, using one unit of its budget."""
        for fault in self._faults:
            if fault.kind != kind or not fault.matches(match):
                continue
            if fault.probability is not None:
                if self._rng.random() >= fault.probability:
                    continue
            else:
                assert fault.count is not None
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
            fault.hits += 1
            return fault
        return None

    def first_http(self, **match: Any) -> Fault | None:
        """Consume the first request-level fault (any of HTTP_KINDS) matching `match`."""
        for fault in list(self._faults):
            if fault.kind in HTTP_KINDS and fault.matches(match):
                found = self.consume(fault.kind, **match)
                if found is not None:
                    return found
        return None

    def wants_server_name(self) -> bool:
        """Whether some request-level fault matches on server name (costly to resolve)."""
        return any(f.kind in HTTP_KINDS and f.server_name is not None for f in self._faults)

    def list(self) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self._faults]

    def clear(self) -> None:
        self._faults.clear()
