"""The OpenClaw gateway's readiness probe: `GET /readyz`, JSON checked, not just 200.

A web UI can answer any path with 200 (clawdapus PR #358), so a ready gateway is one whose
`/readyz` returns a JSON object that says so: `"ready": true`, `"ok": true` or
`"status": "ok" | "ready"`.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Probe:
    ok: bool
    detail: str


async def probe_readyz(http: httpx.AsyncClient, base_url: str) -> Probe:
    """Probe `{base_url}/readyz`; never raises."""
    url = base_url.rstrip("/") + "/readyz"
    try:
        response = await http.get(url)
    except httpx.HTTPError as exc:
        return Probe(False, f"{url} unreachable ({type(exc).__name__})")
    if response.status_code != 200:
        return Probe(False, f"{url} answered {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        return Probe(False, f"{url} answered 200 without JSON")
    if not isinstance(body, dict):
        return Probe(False, f"{url} answered JSON that is not an object")
    if body.get("ready") is True or body.get("ok") is True or body.get("status") in ("ok", "ready"):
        return Probe(True, f"{url} reports ready")
    return Probe(False, f"{url} reports not ready: {str(body)[:200]}")
