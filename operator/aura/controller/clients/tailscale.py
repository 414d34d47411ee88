"""The Tailscale API behind `TailnetApi`, over httpx with OAuth client credentials.

The OAuth access token is fetched with the client-credentials grant and cached until a minute
before it expires (they live an hour); a 401 on an API call drops it so the next call fetches
a new one. Auth keys are minted single-use, pre-authorized and tagged (a key minted by an
OAuth client must carry tags); the key value is returned to the caller exactly once and never
appears in an exception message or log line.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from aura.controller import errors, metrics
from aura.controller.clients.ratelimit import AsyncPacer


@dataclass(frozen=True)
class AuthKey:
    """A freshly minted auth key. `key` is a secret: store it in a Secret, nowhere else."""

    id: str
    key: str = field(repr=False)


@dataclass(frozen=True)
class Device:
    """The fields of a tailnet device the operator reads."""

    id: str  # nodeId, the stable ID
    hostname: str
    addresses: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    authorized: bool = False
    online: bool | None = None

    @property
    def ipv4(self) -> str | None:
        return next((a for a in self.addresses if ":" not in a), None)

    @property
    def ipv6(self) -> str | None:
        return next((a for a in self.addresses if ":" in a), None)


class TailnetApi(Protocol):
    """The Tailscale calls the operator makes. Every method raises only `errors.*`."""

    async def create_auth_key(
        self,
        *,
        tags: list[str],
        description: str,
        expiry_seconds: int,
        reusable: bool = False,
        ephemeral: bool = False,
    ) -> AuthKey: ...

    async def delete_auth_key(self, key_id: str) -> None:
        """Revoke a key; an unknown key counts as done."""
        ...

    async def list_devices(self, *, hostname: str | None = None) -> list[Device]: ...

    async def get_device(self, device_id: str) -> Device:
        """Raises `errors.NotFound` when the device does not exist."""
        ...

    async def delete_device(self, device_id: str) -> None:
        """Raises `errors.NotFound` when the device is already gone."""
        ...

    async def set_device_tags(self, device_id: str, tags: list[str]) -> None:
        """Replace the device's tags (a warm-pool device becomes a customer's)."""
        ...

    async def set_device_name(self, device_id: str, name: str) -> None:
        """Set the device's MagicDNS name (its OS hostname stays)."""
        ...


_ID_SEGMENT = re.compile(r"/(device|keys)/[^/]+")
CREDENTIALS_SOURCE = "TAILSCALE_OAUTH_CLIENT_ID / TAILSCALE_OAUTH_CLIENT_SECRET"


class TailscaleAdapter:
    """`TailnetApi` over the Tailscale v2 REST API."""

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        tailnet: str = "-",
        credentials_source: str = CREDENTIALS_SOURCE,
        timeout: float = 20.0,
        transport: httpx.AsyncBaseTransport | None = None,
        pacer: AsyncPacer | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": "aura-operator"},
        )
        self._client_id = client_id
        self._client_secret = client_secret
        self._tailnet = tailnet
        self._source = credentials_source
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()
        self._pacer = pacer
        """Shared by every call of the process (`--tailscale-rate-limit`); None: unpaced."""

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _access_token(self) -> str:
        async with self._token_lock:
            if self._token is not None and time.monotonic() < self._token_expires:
                return self._token
            response = await self._send(
                "POST",
                "/api/v2/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(self._client_id, self._client_secret),
            )
            if response.status_code in (400, 401, 403):
                raise errors.InvalidCredentials(
                    "Tailscale rejected the OAuth client", source=self._source
                )
            _raise_for_status("oauth token", response, self._source)
            try:
                body = response.json()
                token = str(body["access_token"])
                lifetime = float(body.get("expires_in", 3600))
            except (ValueError, KeyError, TypeError, AttributeError):
                # A 200 without a token (a proxy's page, an API change): transient, not a bug.
                metrics.CLOUD_ERRORS.labels("tailscale", "bad_token_response").inc()
                raise errors.Retryable("oauth token: answer without an access_token") from None
            self._token = token
            self._token_expires = time.monotonic() + max(60.0, lifetime - 60)
            return self._token

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        metrics.CLOUD_CALLS.labels("tailscale", method, _ID_SEGMENT.sub(r"/\1/{id}", path)).inc()
        if self._pacer is not None:
            await self._pacer.acquire()
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            metrics.CLOUD_ERRORS.labels("tailscale", "transport").inc()
            raise errors.Retryable(f"tailscale {method} {path}: {type(exc).__name__}") from None
        if self._pacer is not None:
            self._pacer.observe(response.status_code, _retry_after(response))
        return response

    async def _api(self, what: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        token = await self._access_token()
        response = await self._send(
            method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs
        )
        if response.status_code == 401:
            self._token = None  # expired or revoked: fetch a new one next time
        _raise_for_status(what, response, self._source)
        return response

    async def create_auth_key(
        self,
        *,
        tags: list[str],
        description: str,
        expiry_seconds: int,
        reusable: bool = False,
        ephemeral: bool = False,
    ) -> AuthKey:
        body = {
            "capabilities": {
                "devices": {
                    "create": {
                        "reusable": reusable,
                        "ephemeral": ephemeral,
                        "preauthorized": True,
                        "tags": sorted(tags),
                    }
                }
            },
            "expirySeconds": expiry_seconds,
            "description": description[:50],
        }
        response = await self._api(
            "create auth key", "POST", f"/api/v2/tailnet/{self._tailnet}/keys", json=body
        )
        data = response.json()
        return AuthKey(id=str(data["id"]), key=str(data["key"]))

    async def delete_auth_key(self, key_id: str) -> None:
        try:
            await self._api(
                f"delete auth key {key_id}",
                "DELETE",
                f"/api/v2/tailnet/{self._tailnet}/keys/{key_id}",
            )
        except errors.NotFound:
            return

    async def list_devices(self, *, hostname: str | None = None) -> list[Device]:
        params = {"hostname": hostname} if hostname else {}
        response = await self._api(
            "list devices", "GET", f"/api/v2/tailnet/{self._tailnet}/devices", params=params
        )
        devices = [_device(d) for d in response.json().get("devices", [])]
        # The filter is a newer API feature; apply it here too for older servers.
        return [d for d in devices if hostname is None or d.hostname == hostname]

    async def get_device(self, device_id: str) -> Device:
        response = await self._api(f"get device {device_id}", "GET", f"/api/v2/device/{device_id}")
        return _device(response.json())

    async def delete_device(self, device_id: str) -> None:
        await self._api(f"delete device {device_id}", "DELETE", f"/api/v2/device/{device_id}")

    async def set_device_tags(self, device_id: str, tags: list[str]) -> None:
        await self._api(
            f"tag device {device_id}",
            "POST",
            f"/api/v2/device/{device_id}/tags",
            json={"tags": tags},
        )

    async def set_device_name(self, device_id: str, name: str) -> None:
        await self._api(
            f"name device {device_id}",
            "POST",
            f"/api/v2/device/{device_id}/name",
            json={"name": name},
        )


def _device(data: dict[str, Any]) -> Device:
    return Device(
        id=str(data.get("nodeId") or data.get("id")),
        hostname=str(data.get("hostname", "")),
        addresses=tuple(data.get("addresses") or ()),
        tags=tuple(data.get("tags") or ()),
        authorized=bool(data.get("authorized", False)),
        online=data.get("connectedToControl"),
    )


def _raise_for_status(what: str, response: httpx.Response, source: str) -> None:
    status = response.status_code
    if status < 400:
        return
    metrics.CLOUD_ERRORS.labels("tailscale", str(status)).inc()
    try:
        message = str(response.json().get("message", ""))
    except ValueError:
        message = response.reason_phrase
    text = f"{what}: {message} ({status})"
    if status == 401:
        raise errors.InvalidCredentials(f"{what}: Tailscale rejected the token", source=source)
    if status == 403:
        raise errors.InvalidCredentials(f"{what}: {message}", source=source)
    if status == 404:
        raise errors.NotFound(text)
    if status == 429:
        raise errors.RateLimited(text, retry_after=_retry_after(response))
    if status >= 500 or status in (408, 409):
        raise errors.Retryable(text)
    raise errors.InvalidRequest(text, reason="TailnetRequestRejected")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    return float(value) if value and value.isdigit() else None
