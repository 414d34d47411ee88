"""The one adapter for a simulated world (`aura sandbox`): where to probe and how to configure.

A simulated server has no sshd, no tailnet route and no Ansible target, so two things the
operator does against real hosts are answered by the simulator's admin API instead. The
operator chooses this adapter once, at start-up, when `--sandbox-url` is given; nothing else in
the product knows that a simulator exists, and this module only speaks HTTP to it.

Contract with the sandbox's admin API (owned by the sandbox):

    GET  {admin_url}/servers/{server_id}             {"cloud_init": "done", "gateway_url": ...}
    POST {admin_url}/servers/{server_id}/configure   {"openclaw_version": "<version>",
                                                      "gateway_token"?: "<token>"}
      2xx -> configured (idempotent: configuring again succeeds)
      409 -> the server is not running yet
    POST {admin_url}/servers/{server_id}/gateway     {"running": false | true}
    POST {admin_url}/servers/{server_id}/gateway/restart   {}
    POST {admin_url}/servers/{server_id}/gateway/config    {"openclaw_version", "gateway_token",
                                                            "wait": true}
      2xx -> the simulated gateway service is stopped / started (idempotent) / restarted; a
             stopped one
             neither answers /readyz nor writes to the server's disk
      409 -> the server is not running

`SimulatedConfigurator.configure()` maps 2xx to `ConfigResult(ok=True)` and 409 to
`ConfigResult(ok=False)` with the sandbox's explanation. Network errors and other statuses raise
`ConfigurationError` (naming only the status or the error's type), so the reconcile loop retries
them like any transient failure. The only secret sent is the gateway token (what the playbook
writes to the server), so the simulated gateway's handshake authenticates like a real one; it
never appears in a message.
"""

from __future__ import annotations

import time

import httpx

from aura.configure.base import ConfigResult, ConfigTarget, ConfigurationError
from aura.controller.clients.gateway_service import GatewayState

__all__ = ["SandboxGatewayService", "SandboxHosts", "SimulatedConfigurator"]

GATEWAY_TOKEN_KEY = "OPENCLAW_GATEWAY_TOKEN"  # noqa: S105 (the key's name)

MESSAGE_LIMIT = 500


class SandboxHosts:
    """Sandbox: `GET {admin_url}/servers/{id}` reports `cloud_init` and `gateway_url`."""

    def __init__(self, http: httpx.AsyncClient, admin_url: str) -> None:
        self._http = http
        self._admin = admin_url.rstrip("/")
        self._gateway_urls: dict[int, str] = {}
        """A server's gateway URL never changes (the sandbox derives it from the ID): asked
        once, not before every probe, so the sandbox costs the operator no more CPU per probe
        than the tailnet address does in production."""

    async def _server(self, server_id: int) -> dict[str, object] | None:
        try:
            response = await self._http.get(f"{self._admin}/servers/{server_id}")
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        try:
            body = response.json()
        except ValueError:
            return None  # not the admin API's answer: nothing observed yet
        return body if isinstance(body, dict) else None

    async def cloud_init_done(self, server_id: int, host: str | None) -> bool:
        server = await self._server(server_id)
        return server is not None and server.get("cloud_init") == "done"

    async def gateway_url(self, server_id: int, tailnet_ipv4: str | None, port: int) -> str | None:
        if (known := self._gateway_urls.get(server_id)) is not None:
            return known
        server = await self._server(server_id)
        url = server.get("gateway_url") if server else None
        if not url:
            return None
        self._gateway_urls[server_id] = str(url)
        return str(url)


class SimulatedConfigurator:
    """Configures sandbox servers through the sandbox's admin endpoint.

    `http` is the operator's one client for the sandbox (a client per call cost about 25 ms of
    CPU and 0.8 MiB of resident memory that a burst of concurrent calls never gave back: each
    loads the CA bundle); `timeout_seconds` bounds each request.
    """

    def __init__(self, admin_url: str, http: httpx.AsyncClient, *, timeout_seconds: float = 10.0):
        self.admin_url = admin_url.rstrip("/")
        self.http = http
        self._timeout = timeout_seconds

    async def configure(self, target: ConfigTarget) -> ConfigResult:
        """Mark `target`'s server configured; see the module docstring for the mapping."""
        started = time.monotonic()
        url = f"{self.admin_url}/servers/{target.server_id}/configure"
        body: dict[str, str] = {"openclaw_version": target.openclaw_version}
        token = target.runtime_env.get(GATEWAY_TOKEN_KEY)
        if token:  # what the playbook writes into the gateway's config on the host
            body["gateway_token"] = token
        try:
            response = await self.http.post(url, json=body, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise ConfigurationError(
                f"sandbox configure of server {target.server_id}: {type(exc).__name__}"
            ) from None
        took = time.monotonic() - started
        if response.status_code == httpx.codes.CONFLICT:
            return ConfigResult(
                ok=False,
                message=_conflict_message(target.server_id, response),
                duration_seconds=took,
            )
        if not response.is_success:
            raise ConfigurationError(
                f"sandbox configure of server {target.server_id} answered {response.status_code}"
            )
        return ConfigResult(ok=True, duration_seconds=took)


class SandboxGatewayService:
    """Starts, stops and restarts a simulated gateway service (`GatewayService`), through the
    configurator's client."""

    def __init__(self, admin_url: str, http: httpx.AsyncClient, *, timeout_seconds: float = 10.0):
        self.admin_url = admin_url.rstrip("/")
        self._http = http
        self._timeout = timeout_seconds

    async def set_state(self, target: ConfigTarget, state: GatewayState) -> ConfigResult:
        started = time.monotonic()
        url = f"{self.admin_url}/servers/{target.server_id}/gateway"
        body: dict[str, object] = {}
        if state == GatewayState.RESTARTED:
            url = f"{url}/restart"
        else:
            body = {"running": state == GatewayState.STARTED}
        return await self._post(target, url, body, httpx.Timeout(self._timeout), started)

    async def push_config(self, target: ConfigTarget) -> ConfigResult:
        """The handover: the sandbox answers once the gateway is back (`wait`), so the read
        has no limit of its own; the caller bounds the whole call."""
        started = time.monotonic()
        url = f"{self.admin_url}/servers/{target.server_id}/gateway/config"
        body: dict[str, object] = {
            "openclaw_version": target.openclaw_version,
            "gateway_token": target.runtime_env.get(GATEWAY_TOKEN_KEY, ""),
            "wait": True,
        }
        timeout = httpx.Timeout(self._timeout, read=None)
        return await self._post(target, url, body, timeout, started)

    async def _post(
        self,
        target: ConfigTarget,
        url: str,
        body: dict[str, object],
        limits: httpx.Timeout,
        started: float,
    ) -> ConfigResult:
        try:
            response = await self._http.post(url, json=body, timeout=limits)
        except httpx.HTTPError as exc:
            raise ConfigurationError(
                f"sandbox gateway of server {target.server_id}: {type(exc).__name__}"
            ) from None
        return self._result(target, response, time.monotonic() - started)

    def _result(self, target: ConfigTarget, response: httpx.Response, took: float) -> ConfigResult:
        if response.status_code == httpx.codes.CONFLICT:
            message = _conflict_message(target.server_id, response)
            return ConfigResult(ok=False, message=message, duration_seconds=took)
        if response.status_code == httpx.codes.NOT_FOUND and "json" not in response.headers.get(
            "content-type", ""
        ):  # no such route (a JSON 404 is an unknown server, raised below)
            message = (
                f"this sandbox does not simulate {response.request.url.path}; "
                "upgrade the sandbox (checkpoints: use mode: online)"
            )
            return ConfigResult(ok=False, message=message, duration_seconds=took)
        if not response.is_success:
            raise ConfigurationError(
                f"sandbox gateway of server {target.server_id} answered {response.status_code}"
            )
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
