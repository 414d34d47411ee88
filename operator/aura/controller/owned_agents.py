"""Agents Aura creates for its own objects: an AgentImage's builder, an AgentPool's members.

One body shape for both: an ordinary Agent (the whole reconcile applies to it) whose
controller ownerReference is the object, so deleting the object deletes them (the Agent's
finalizer still removes the cloud objects first)."""

from __future__ import annotations

from typing import Any

from aura.models import GROUP, KIND, VERSION


def owned_agent(
    *,
    owner_kind: str,
    owner_name: str,
    owner_uid: str,
    name: str,
    namespace: str,
    labels: dict[str, str],
    annotations: dict[str, str],
    spec: dict[str, Any],
) -> dict[str, Any]:
    """The Agent named `name` with `spec`, owned by the `owner_kind` `owner_name`."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": owner_kind,
                    "name": owner_name,
                    "uid": owner_uid,
                    "controller": True,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": spec,
    }
