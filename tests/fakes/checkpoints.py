"""`FakeCheckpointStore`: the `CheckpointStore` Protocol in memory (the apiserver's custom
objects), with merge-patch semantics for status and 409 on a duplicate name."""

from __future__ import annotations

import copy
import itertools
from typing import Any

Obj = dict[str, Any]


def _merge(target: Obj, patch: Obj) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


class FakeCheckpointStore:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self._uids = itertools.count(1)

    def put(self, plural: str, body: Obj) -> Obj:
        meta = body.setdefault("metadata", {})
        meta.setdefault("uid", f"uid-{next(self._uids)}")
        meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        self.objects[(plural, meta["namespace"], meta["name"])] = body
        return body

    async def get(self, plural: str, namespace: str, name: str) -> Obj | None:
        found = self.objects.get((plural, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    async def list(
        self, plural: str, namespace: str | None, label_selector: str | None = None
    ) -> list[Obj]:
        """`label_selector`: only the existence form (`key`) is understood here."""
        return [
            copy.deepcopy(o)
            for (p, ns, _), o in self.objects.items()
            if p == plural
            and (namespace is None or ns == namespace)
            and (label_selector is None or label_selector in (o["metadata"].get("labels") or {}))
        ]

    async def create(self, plural: str, namespace: str, body: Obj) -> bool:
        if (plural, namespace, body["metadata"]["name"]) in self.objects:
            return False
        self.put(plural, copy.deepcopy(body))
        return True

    async def delete(self, plural: str, namespace: str, name: str) -> None:
        self.objects.pop((plural, namespace, name), None)

    async def patch(self, plural: str, namespace: str, name: str, body: Obj) -> bool:
        found = self.objects.get((plural, namespace, name))
        version = (body.get("metadata") or {}).get("resourceVersion")
        if found is None or version not in (None, found["metadata"].get("resourceVersion")):
            return False
        _merge(found, body)
        return True

    async def patch_status(self, plural: str, namespace: str, name: str, status: Obj) -> None:
        found = self.objects.get((plural, namespace, name))
        if found is not None:
            _merge(found.setdefault("status", {}), status)
