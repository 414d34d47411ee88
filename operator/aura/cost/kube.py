"""The Kubernetes reads and writes of cost and budgets: AgentBudgets, `status.cost`, Events.

Status writes are JSON merge patches of one key (`status.cost`, or the budget's status), so
they never race the reconcile's own status patches, which touch only the keys they change.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any, Protocol

from aiohttp import ClientError
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from aura.controller import errors
from aura.controller.clients.kube import classify
from aura.cost.budget_models import BUDGET_KIND, BUDGET_PLURAL
from aura.models import API_VERSION, GROUP, PLURAL, VERSION

# `_content_type` is honoured by the client, missing from its stubs (as in bridge/agents.py).
_MERGE_PATCH: dict[str, Any] = {"_content_type": "application/merge-patch+json"}


class BudgetReader(Protocol):
    async def list_budgets(self, namespace: str | None) -> list[dict[str, Any]]:
        """AgentBudget objects in `namespace` (all namespaces when None); raises `errors.*`."""
        ...


class CostKube:
    """`BudgetReader` plus the writes of the cost job, over one kubernetes_asyncio ApiClient."""

    def __init__(self, api: client.ApiClient) -> None:
        self._api = api
        self._custom = client.CustomObjectsApi(api)

    async def list_budgets(self, namespace: str | None) -> list[dict[str, Any]]:
        """AgentBudgets; none when their CRD is not installed (then no budget can exist)."""
        try:
            if namespace:
                result = await self._custom.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, BUDGET_PLURAL
                )
            else:
                result = await self._custom.list_cluster_custom_object(
                    GROUP, VERSION, BUDGET_PLURAL
                )
        except ApiException as exc:
            if exc.status == 404:
                return []
            raise classify("list AgentBudgets", exc) from None
        except (ClientError, TimeoutError) as exc:
            raise errors.Retryable(f"list AgentBudgets: {type(exc).__name__}") from None
        items: list[dict[str, Any]] = result.get("items", [])
        return items

    async def patch_agent_cost(self, namespace: str, name: str, cost: dict[str, Any]) -> None:
        await self._patch_status(PLURAL, namespace, name, {"status": {"cost": cost}})

    async def patch_agent_annotations(
        self, namespace: str, name: str, annotations: dict[str, str | None]
    ) -> None:
        """Merge-patch an Agent's annotations (None removes one); a deleted Agent is done."""
        try:
            await self._custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                {"metadata": {"annotations": annotations}},
                **_MERGE_PATCH,
            )
        except ApiException as exc:
            if exc.status != 404:
                raise classify(f"annotate Agent {namespace}/{name}", exc) from None

    async def patch_budget_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        await self._patch_status(BUDGET_PLURAL, namespace, name, {"status": status})

    async def _patch_status(
        self, plural: str, namespace: str, name: str, body: dict[str, Any]
    ) -> None:
        try:
            await self._custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                plural,
                name,
                body,
                **_MERGE_PATCH,
            )
        except ApiException as exc:
            if exc.status != 404:  # deleted meanwhile: nothing to record
                raise

    async def post_event(
        self, obj: dict[str, Any], type_: str, reason: str, message: str, *, kind: str
    ) -> None:
        """An events.k8s.io/v1 Event about an Agent or AgentBudget (`kind`)."""
        meta = obj["metadata"]
        event = client.EventsV1Event(
            metadata=client.V1ObjectMeta(
                name=f"{meta['name'][:230]}.{time.time_ns():x}", namespace=meta["namespace"]
            ),
            regarding=client.V1ObjectReference(
                api_version=API_VERSION,
                kind=kind,
                name=meta["name"],
                namespace=meta["namespace"],
                uid=meta.get("uid"),
            ),
            event_time=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),  # type: ignore[arg-type]
            reporting_controller="aura.dev/operator",
            reporting_instance=os.environ.get("HOSTNAME", "aura-operator")[:128],
            action="Cost" if kind != BUDGET_KIND else "Budget",
            reason=reason[:128],
            note=message[:1024],
            type=type_,
        )
        await client.EventsV1Api(self._api).create_namespaced_event(meta["namespace"], event)
