"""The sandbox Configurator: asks the simulated world to mark a server configured.

Contract with the sandbox's admin API (owned by the sandbox):

    POST {admin_url}/servers/{server_id}/configure   {"openclaw_version": "<version>"}
      2xx -> configured (idempotent: configuring again succeeds)
      409 -> the server is not running yet

`configure()` maps 2xx to `ConfigResult(ok=True)` and 409 to `ConfigResult(ok=False)` with
the sandbox's explanation. Network errors and other statuses raise (`httpx.HTTPError`), so
the reconcile loop retries them like any transient failure. Nothing secret is sent.
"""

from __future__ import annotations

import time

import httpx

from aura.configure.base import ConfigResult, ConfigTarget

__all__ = ["SimulatedConfigurator"]

MESSAGE_LIMIT = 500


class SimulatedConfigurator:
    """Configures sandbox servers through the sandbox's admin endpoint.

    `transport` is for tests (an `httpx.MockTransport`); `timeout_seconds` bounds each request.
    """

    def __init__(
        self,
        admin_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_seconds: float = 10.0,
    ) -> None:
        self.admin_url = admin_url.rstrip("/")
        self._transport = transport
        self._timeout = timeout_seconds

    async def configure(self, target: ConfigTarget) -> ConfigResult:
        """Mark `target`'s server configured; see the module docstring for the mapping."""
        started = time.monotonic()
        url = f"{self.admin_url}/servers/{target.server_id}/configure"
        async with httpx.AsyncClient(transport=self._transport, timeout=self._timeout) as client:
            response = await client.post(url, json={"openclaw_version": target.openclaw_version})
        took = time.monotonic() - started
        if response.status_code == httpx.codes.CONFLICT:
            return ConfigResult(
                ok=False,
                message=_conflict_message(target.server_id, response),
                duration_seconds=took,
            )
        response.raise_for_status()
        return ConfigResult(ok=True, duration_seconds=took)


def _conflict_message(server_id: int, response: httpx.Response) -> str:
    detail = ""
    try:
        body = response.json()
        if isinstance(body, dict):
            detail = str(body.get("detail") or body.get("message") or body.get("error") or "")
    except ValueError:
        detail = response.text
    message = f"server {server_id} is not running yet"
    if detail.strip():
        message += f": {' '.join(detail.split())}"
    return message[:MESSAGE_LIMIT]
