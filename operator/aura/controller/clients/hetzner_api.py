"""What the operator reads of Hetzner Cloud: `HetznerApi` (the Protocol every reconcile step and
the cost job use) and the plain records it returns. The hcloud adapter is `hetzner.py`; the
fake for tests is `tests/fakes/hetzner.py`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class ServerInfo:
    """The fields of a Hetzner server the operator reads."""

    id: int
    name: str
    status: str  # initializing, starting, running, stopping, off, deleting, ...
    labels: dict[str, str] = field(default_factory=dict)
    ipv4: str | None = None
    ipv6: str | None = None
    location: str | None = None
    server_type: str | None = None
    created: datetime | None = None
    outgoing_traffic: int | None = None
    """Bytes sent this billing period (the cost model prices what exceeds the included volume)."""


@dataclass(frozen=True)
class ImageInfo:
    """The fields of a Hetzner snapshot image the operator reads (sizes in GB)."""

    id: int
    status: str  # creating, available, unavailable
    labels: dict[str, str] = field(default_factory=dict)
    image_size: float | None = None  # the data stored: what is billed per GB-month
    disk_size: float | None = None  # the source server's disk: the minimum to create from it
    created_from: int | None = None
    created: datetime | None = None  # when storage billing starts


class HetznerApi(Protocol):
    """The Hetzner calls the operator makes. Every method raises only `errors.*`."""

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
        """`image` is an image name, or the ID of a snapshot image (a clone)."""
        ...

    async def get_server(self, server_id: int) -> ServerInfo:
        """Raises `errors.NotFound` when the server does not exist."""
        ...

    async def list_servers(
        self, label_selector: str, statuses: list[str] | None = None
    ) -> list[ServerInfo]:
        """Servers matching `label_selector` (and, when given, in one of `statuses`)."""
        ...

    async def update_server(self, server_id: int, *, name: str, labels: dict[str, str]) -> None:
        """Rename and relabel a server (labels are replaced as a whole). A warm-pool server
        handed to an Agent takes the Agent's name and labels this way."""
        ...

    async def power_on(self, server_id: int) -> None: ...

    async def shutdown(self, server_id: int) -> None: ...

    async def power_off(self, server_id: int) -> None: ...

    async def reboot(self, server_id: int) -> None:
        """A soft reboot (ACPI); the repair ladder's second rung."""
        ...

    async def delete_server(self, server_id: int) -> None:
        """Raises `errors.NotFound` when the server is already gone."""
        ...

    async def get_pricing(self) -> dict[str, Any]:
        """The `pricing` object of `GET /pricing` (one call: every price of the project)."""
        ...

    # Snapshot images (checkpoints)
    async def create_image(
        self, server_id: int, *, description: str, labels: dict[str, str]
    ) -> ImageInfo:
        """`create_image` of type snapshot. Never retried blindly: a caller that lost the
        response finds the image by its labels (`list_images`)."""
        ...

    async def get_image(self, image_id: int) -> ImageInfo:
        """Raises `errors.NotFound` when the image does not exist."""
        ...

    async def list_images(self, label_selector: str) -> list[ImageInfo]:
        """Snapshot images matching `label_selector`, every status."""
        ...

    async def update_image_labels(self, image_id: int, labels: dict[str, str]) -> None: ...

    async def delete_image(self, image_id: int) -> None:
        """Raises `errors.NotFound` when the image is already gone."""
        ...

    async def rebuild_server(
        self, server_id: int, image_id: int, user_data: str | None = None
    ) -> int:
        """Rebuild the server's disk from the image (same server, same IPs); the action ID.
        `user_data` replaces the server's cloud-init document for the boot that follows."""
        ...

    async def action_status(self, action_id: int) -> str:
        """`running`, `success` or `error`."""
        ...
