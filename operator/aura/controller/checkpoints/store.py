"""The Aura objects the checkpoint controller reads and writes besides its own handler's body.

kopf hands each handler its own object; a checkpoint also needs its Agent (to read the server
and to hold it), a restore its checkpoint, a schedule the Agent's checkpoints. All of them go
through `CheckpointStore`, one Protocol over the apiserver's custom objects API.
"""

from __future__ import annotations

from typing import Any, Protocol

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from aura.controller import errors
from aura.wire import GROUP, VERSION

Obj = dict[str, Any]
# A JSON merge patch, so `None` deletes a key (the client's default for a dict body is a JSON
# Patch); the generated signature does not declare the option, hence a plain mapping.
_MERGE_PATCH: dict[str, Any] = {"_content_type": "application/merge-patch+json"}


class CheckpointStore(Protocol):
    async def get(self, plural: str, namespace: str, name: str) -> Obj | None:
        """The object, or None if it does not exist."""
        ...

    async def list(
        self, plural: str, namespace: str | None, label_selector: str | None = None
    ) -> list[Obj]:
        """Every object of `plural` in `namespace` (all namespaces when None), only those
        matching `label_selector` when given (selected by the apiserver)."""
        ...

    async def create(self, plural: str, namespace: str, body: Obj) -> bool:
        """Create it; False if an object of that name already exists."""
        ...

    async def delete(self, plural: str, namespace: str, name: str) -> None:
        """Delete it; a missing object counts as done."""
        ...

    async def patch_status(self, plural: str, namespace: str, name: str, status: Obj) -> None:
        """Merge-patch `status` (None values delete keys); a missing object counts as done."""
        ...

    async def patch(self, plural: str, namespace: str, name: str, body: Obj) -> bool:
        """Merge-patch `body` (its metadata and spec); with a `metadata.resourceVersion` in it
        the apiserver applies it only to that version (compare-and-swap). False when it changed
        meanwhile or is gone."""
        ...


class KubeCheckpointStore:
    """`CheckpointStore` over kubernetes_asyncio's CustomObjectsApi."""

    def __init__(self, api: client.ApiClient) -> None:
        self._custom = client.CustomObjectsApi(api)

    async def get(self, plural: str, namespace: str, name: str) -> Obj | None:
        try:
            obj: Obj = await self._custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise _classify(exc, f"get {plural}/{name}") from None
        return obj

    async def list(
        self, plural: str, namespace: str | None, label_selector: str | None = None
    ) -> list[Obj]:
        selector = label_selector or ""  # empty: every object
        try:
            if namespace:
                result = await self._custom.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, plural, label_selector=selector
                )
            else:
                result = await self._custom.list_cluster_custom_object(
                    GROUP, VERSION, plural, label_selector=selector
                )
        except ApiException as exc:
            raise _classify(exc, f"list {plural}") from None
        items: list[Obj] = result.get("items", [])
        return items

    async def create(self, plural: str, namespace: str, body: Obj) -> bool:
        try:
            await self._custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, body
            )
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise _classify(exc, f"create {plural}") from None
        return True

    async def delete(self, plural: str, namespace: str, name: str) -> None:
        try:
            await self._custom.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name
            )
        except ApiException as exc:
            if exc.status != 404:
                raise _classify(exc, f"delete {plural}/{name}") from None

    async def patch_status(self, plural: str, namespace: str, name: str, status: Obj) -> None:
        try:
            await self._custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                plural,
                name,
                {"status": status},
                **_MERGE_PATCH,
            )
        except ApiException as exc:
            if exc.status != 404:
                raise _classify(exc, f"patch {plural}/{name} status") from None

    async def patch(self, plural: str, namespace: str, name: str, body: Obj) -> bool:
        try:
            await self._custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name, body, **_MERGE_PATCH
            )
        except ApiException as exc:
            if exc.status in (404, 409):
                return False
            raise _classify(exc, f"patch {plural}/{name}") from None
        return True


def _classify(exc: ApiException, what: str) -> errors.AuraError:
    """The apiserver's answer as an Aura error: 4xx other than conflicts is our bug (say so
    plainly), the rest is transient."""
    if exc.status in (400, 403, 422):
        return errors.Permanent(f"{what}: {exc.status} {exc.reason}", reason="KubernetesApi")
    return errors.Retryable(f"{what}: {exc.status} {exc.reason}")
