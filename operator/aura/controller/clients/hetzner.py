"""Hetzner Cloud behind `HetznerApi`, adapted over the official `hcloud` client.

One `HcloudAdapter` exists per operator process. Every request it makes passes through one
`requests.Session` hook (`_MeteredSession`) that waits on the shared `RateLimiter`, counts
the call per endpoint template, and feeds the response's rate-limit headers back. hcloud's
own retry loop is switched off: it sleeps inside a worker thread and ignores
`RateLimit-Reset`; our reconcile loop retries at the right level (re-reading real state first,
which also turns a lost create response into an adoption).

hcloud is synchronous, so calls run in a small dedicated thread pool; the async methods are
what the reconcile steps see. Errors leave this module only as `aura.controller.errors`.
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import requests
from hcloud import APIException, Client
from hcloud.images import BoundImage, Image
from hcloud.locations import Location
from hcloud.server_types import ServerType
from hcloud.servers import BoundServer, Server

from aura import __version__
from aura.controller import errors, metrics
from aura.controller.clients.hetzner_api import ImageInfo, ServerInfo
from aura.controller.clients.ratelimit import RateLimiter

_ID_SEGMENT = re.compile(r"/\d+(?=/|$)")
_PERMANENT_CODES = {
    "invalid_input": "InvalidInput",
    "resource_limit_exceeded": "ResourceLimitExceeded",
    "resource_unavailable": "ResourceUnavailable",
    "placement_error": "PlacementError",
    "forbidden": "Forbidden",
    "json_error": "InvalidInput",
}
_RETRYABLE_CODES = {
    "locked",
    "conflict",
    "timeout",
    "bad_gateway",
    "server_error",
    "unavailable",
    "maintenance",
    "service_error",
    "action_failed",
}


class _MeteredSession(requests.Session):
    """A requests session that every hcloud call goes through: limiter, metrics, headers."""

    def __init__(self, limiter: RateLimiter, timeout: float) -> None:
        super().__init__()
        self._limiter = limiter
        self._timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        method_s = method.decode() if isinstance(method, bytes) else method
        url_s = url.decode() if isinstance(url, bytes) else url
        path = "/" + url_s.split("/v1/", 1)[-1].split("?", 1)[0]
        metrics.CLOUD_CALLS.labels("hetzner", method_s, _ID_SEGMENT.sub("/{id}", path)).inc()
        self._limiter.acquire()
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        response = super().request(method_s, url_s, *args, **kwargs)
        self._limiter.observe(response.status_code, response.headers)
        return response


class HcloudAdapter:
    """`HetznerApi` over hcloud-python. `token_source` names where the token came from."""

    def __init__(
        self,
        *,
        token: str,
        endpoint: str,
        limiter: RateLimiter,
        token_source: str,
        timeout: float = 30.0,
        max_threads: int = 4,
    ) -> None:
        self._client = Client(
            token=token,
            api_endpoint=endpoint,
            application_name="aura-operator",
            application_version=__version__,
            timeout=timeout,
        )
        base = self._client._client
        base._retry_max_retries = 0  # see the module docstring
        base._session = _MeteredSession(limiter, timeout)
        self._limiter = limiter
        self._token_source = token_source
        self._pool = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="hcloud")

    async def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))
        except APIException as exc:
            raise self._classify(what, exc) from None
        except requests.exceptions.RequestException as exc:
            metrics.CLOUD_ERRORS.labels("hetzner", "transport").inc()
            raise errors.Retryable(f"{what}: {type(exc).__name__}") from None

    def _classify(self, what: str, exc: APIException) -> errors.AuraError:
        code = exc.code
        metrics.CLOUD_ERRORS.labels("hetzner", str(code)).inc()
        text = f"{what}: {exc.message} ({code})"
        if code in ("unauthorized", 401):
            return errors.InvalidCredentials(
                f"{what}: Hetzner rejected the API token", source=self._token_source
            )
        if code in ("rate_limit_exceeded", 429):
            return errors.RateLimited(text, retry_after=self._limiter.backoff_remaining())
        if code in ("locked", 423):
            return errors.Locked(text)
        if code == "uniqueness_error":
            return errors.AlreadyExists(text)
        if code in ("not_found", 404):
            return errors.NotFound(text)
        if isinstance(code, str) and code in _PERMANENT_CODES:
            return errors.InvalidRequest(text, reason=_PERMANENT_CODES[code])
        if code in _RETRYABLE_CODES or (isinstance(code, int) and code >= 500):
            return errors.Retryable(text)
        if isinstance(code, int) and 400 <= code < 500:
            return errors.InvalidRequest(text, reason="InvalidRequest")
        return errors.Retryable(text)

    async def create_server(
        self,
        *,
        name: str,
        server_type: str,
        location: str,
        image: str | int,
        labels: dict[str, str],
        user_data: str,
    ) -> ServerInfo:
        response = await self._call(
            f"create server {name}",
            self._client.servers.create,
            name=name,
            server_type=ServerType(name=server_type),
            image=Image(id=image) if isinstance(image, int) else Image(name=image),
            location=Location(name=location),
            labels=labels,
            user_data=user_data,
            start_after_create=True,
        )
        return _info(response.server)

    async def get_server(self, server_id: int) -> ServerInfo:
        server = await self._call(
            f"get server {server_id}", self._client.servers.get_by_id, server_id
        )
        return _info(server)

    async def list_servers(
        self, label_selector: str, statuses: list[str] | None = None
    ) -> list[ServerInfo]:
        servers = await self._call(
            "list servers",
            self._client.servers.get_all,
            label_selector=label_selector,
            status=statuses,
        )
        return [_info(s) for s in servers]

    async def power_on(self, server_id: int) -> None:
        await self._call(f"power on {server_id}", self._client.servers.power_on, Server(server_id))

    async def shutdown(self, server_id: int) -> None:
        await self._call(f"shutdown {server_id}", self._client.servers.shutdown, Server(server_id))

    async def power_off(self, server_id: int) -> None:
        await self._call(
            f"power off {server_id}", self._client.servers.power_off, Server(server_id)
        )

    async def reboot(self, server_id: int) -> None:
        await self._call(f"reboot {server_id}", self._client.servers.reboot, Server(server_id))

    async def delete_server(self, server_id: int) -> None:
        await self._call(
            f"delete server {server_id}", self._client.servers.delete, Server(server_id)
        )

    async def get_pricing(self) -> dict[str, Any]:
        response = await self._call("get pricing", self._client.request, "GET", "/pricing")
        pricing: dict[str, Any] = response["pricing"]
        return pricing

    # Snapshot images (checkpoints)

    async def create_image(
        self, server_id: int, *, description: str, labels: dict[str, str]
    ) -> ImageInfo:
        response = await self._call(
            f"create image of server {server_id}",
            self._client.servers.create_image,
            Server(server_id),
            description=description,
            type="snapshot",
            labels=labels,
        )
        return _image(response.image)

    async def get_image(self, image_id: int) -> ImageInfo:
        image = await self._call(f"get image {image_id}", self._client.images.get_by_id, image_id)
        return _image(image)

    async def list_images(self, label_selector: str) -> list[ImageInfo]:
        images = await self._call(
            "list images",
            self._client.images.get_all,
            label_selector=label_selector,
            type=["snapshot"],
        )
        return [_image(i) for i in images]

    async def update_server(self, server_id: int, *, name: str, labels: dict[str, str]) -> None:
        await self._call(
            f"update server {server_id}",
            self._client.servers.update,
            Server(server_id),
            name=name,
            labels=labels,
        )

    async def update_image_labels(self, image_id: int, labels: dict[str, str]) -> None:
        await self._call(
            f"label image {image_id}", self._client.images.update, Image(image_id), labels=labels
        )

    async def delete_image(self, image_id: int) -> None:
        await self._call(f"delete image {image_id}", self._client.images.delete, Image(image_id))

    async def rebuild_server(
        self, server_id: int, image_id: int, user_data: str | None = None
    ) -> int:
        response = await self._call(
            f"rebuild server {server_id} from image {image_id}",
            self._client.servers.rebuild,
            Server(server_id),
            Image(image_id),
            user_data=user_data,
        )
        action_id: int = response.action.data_model.id
        return action_id

    async def action_status(self, action_id: int) -> str:
        action = await self._call(
            f"get action {action_id}", self._client.actions.get_by_id, action_id
        )
        status: str = action.data_model.status
        return status

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _info(server: BoundServer) -> ServerInfo:
    # Read the data model directly: attribute access on an incomplete bound model would
    # trigger a hidden GET per field.
    data = server.data_model
    public = data.public_net
    ipv4 = public.ipv4.ip if public is not None and public.ipv4 is not None else None
    ipv6 = public.ipv6.ip if public is not None and public.ipv6 is not None else None
    location = data.location.data_model.name if data.location is not None else None
    server_type = data.server_type.data_model.name if data.server_type is not None else None
    assert data.id is not None
    return ServerInfo(
        id=data.id,
        name=data.name or "",
        status=data.status or "unknown",
        labels=dict(data.labels or {}),
        ipv4=ipv4,
        ipv6=ipv6,
        location=location,
        server_type=server_type,
        created=_aware(data.created),
        outgoing_traffic=data.outgoing_traffic,
    )


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _image(image: BoundImage) -> ImageInfo:
    data = image.data_model
    assert data.id is not None
    created_from = data.created_from.id if data.created_from is not None else None
    return ImageInfo(
        id=data.id,
        status=data.status or "unknown",
        labels=dict(data.labels or {}),
        image_size=data.image_size,
        disk_size=data.disk_size,
        created_from=created_from,
        created=_aware(data.created),
    )
