"""The operator's own Kubernetes writes besides the Agent: Secrets, Events, the Agent list.

kopf owns the Agent object (watching, status patches, finalizer); this module owns the
children. Secrets are created with an ownerReference to their Agent (so a real cluster's
garbage collector removes them with it) and labelled so they can be found; they are still
deleted explicitly because `desiredState: deleted` keeps the Agent as a record.

Like every adapter, this one raises only `aura.controller.errors` (`_classified`): the
apiserver's answers are classified here, once, so no reconcile step imports the Kubernetes
client.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from aiohttp import ClientError
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from aura.controller import errors, watch_trim
from aura.controller.clients.kube_pool import MAX_CONNECTIONS
from aura.models import API_VERSION, GROUP, KIND, PLURAL, VERSION


@dataclass(frozen=True)
class AgentRef:
    """Enough of an Agent to own a child object or be the subject of an Event."""

    namespace: str
    name: str
    uid: str


RBAC_SOURCE = "the operator's RBAC (manifests/operator-rbac.yaml)"
LIST_PAGE = 500
"""Agents per page of a full list."""


def classify(what: str, exc: ApiException) -> errors.AuraError:
    """The `errors.*` class of an apiserver answer; messages carry the status and reason only."""
    status = exc.status or 0
    text = f"{what}: {exc.reason or 'error'} ({status})"
    if status == 404:
        return errors.NotFound(text)
    if status == 409:
        return errors.AlreadyExists(text)
    if status in (401, 403):
        return errors.InvalidCredentials(
            f"{what}: the apiserver refused ({status})", source=RBAC_SOURCE
        )
    if status == 429:
        headers: dict[str, str] = dict(exc.headers or {})
        retry_after = headers.get("Retry-After", "")
        delay = float(retry_after) if retry_after.isdigit() else None
        return errors.RateLimited(text, retry_after=delay)
    if status == 422 or (400 <= status < 500 and status != 408):
        return errors.InvalidRequest(text, reason="KubernetesRequestRejected")
    return errors.Retryable(text)


@contextlib.asynccontextmanager
async def _classified(what: str) -> AsyncIterator[None]:
    """Turn the Kubernetes client's exceptions into `errors.*` (transport errors: Retryable)."""
    try:
        yield
    except ApiException as exc:
        raise classify(what, exc) from None
    except (ClientError, TimeoutError) as exc:
        raise errors.Retryable(f"{what}: {type(exc).__name__}") from None


class SecretStore(Protocol):
    async def get(self, namespace: str, name: str) -> dict[str, str] | None:
        """The decoded data of a Secret, or None if it does not exist."""
        ...

    async def create(
        self, owner: AgentRef, name: str, data: dict[str, str], labels: dict[str, str]
    ) -> bool:
        """Create the Secret; False if it already existed (the caller re-reads it)."""
        ...

    async def delete(self, namespace: str, name: str) -> None:
        """Delete the Secret; a missing one counts as done."""
        ...


class AgentAnnotator(Protocol):
    async def annotate_agent(self, namespace: str, name: str, key: str, value: str) -> None:
        """Set one annotation on an Agent (a merge patch); NotFound if the Agent is gone."""
        ...


class EventSink(Protocol):
    async def post(
        self, agent: AgentRef, type_: str, reason: str, message: str, *, kind: str = KIND
    ) -> None:
        """An Event about `agent` (or, with `kind`, another Aura object of that ref)."""
        ...


async def post_events(
    sink: EventSink,
    ref: AgentRef,
    events: Iterable[tuple[str, str, str]],
    log: logging.Logger | logging.LoggerAdapter[logging.Logger],
    *,
    kind: str = KIND,
) -> None:
    """Post each (type, reason, message) about `ref`. An Event is best effort: a failure is
    logged and never fails the pass that recorded it."""
    for type_, reason, message in events:
        try:
            await sink.post(ref, type_, reason, message, kind=kind)
        except Exception as exc:
            log.warning("could not post event %s: %s", reason, type(exc).__name__)


class KubeClients:
    """Secrets, Events, the Agent list and peering records over one kubernetes_asyncio ApiClient."""

    def __init__(self, api: client.ApiClient) -> None:
        self._api = api
        self._core = client.CoreV1Api(api)
        self._custom = client.CustomObjectsApi(api)

    @classmethod
    async def connect(cls) -> KubeClients:
        """Use the in-cluster service account, else `KUBECONFIG` / ~/.kube/config."""
        configuration = client.Configuration()
        if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            await config.load_kube_config(
                config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration
            )
        configuration.connection_pool_maxsize = MAX_CONNECTIONS  # kube_pool.py says why
        return cls(client.ApiClient(configuration=configuration))

    async def close(self) -> None:
        await self._api.close()

    @property
    def api(self) -> client.ApiClient:
        """The shared ApiClient, for the other kinds' stores (controller/checkpoints/) and start-up
        tasks such as sidecar_key.py."""
        return self._api

    # SecretStore
    async def get(self, namespace: str, name: str) -> dict[str, str] | None:
        try:
            async with _classified(f"read Secret {namespace}/{name}"):
                secret = await self._core.read_namespaced_secret(name, namespace)
        except errors.NotFound:
            return None
        return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}

    async def create(
        self, owner: AgentRef, name: str, data: dict[str, str], labels: dict[str, str]
    ) -> bool:
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(
                name=name,
                namespace=owner.namespace,
                labels=labels,
                owner_references=[
                    client.V1OwnerReference(
                        api_version=API_VERSION,
                        kind=KIND,
                        name=owner.name,
                        uid=owner.uid,
                        controller=True,
                        block_owner_deletion=False,
                    )
                ],
            ),
            type="Opaque",
            string_data=data,
        )
        try:
            async with _classified(f"create Secret {owner.namespace}/{name}"):
                await self._core.create_namespaced_secret(owner.namespace, body)
        except errors.AlreadyExists:
            return False
        return True

    async def delete(self, namespace: str, name: str) -> None:
        with contextlib.suppress(errors.NotFound):
            async with _classified(f"delete Secret {namespace}/{name}"):
                await self._core.delete_namespaced_secret(name, namespace)

    # EventSink
    async def post(
        self, agent: AgentRef, type_: str, reason: str, message: str, *, kind: str = KIND
    ) -> None:
        """Post an events.k8s.io/v1 Event about `agent`, stamped with the current time to the
        microsecond (`eventTime`), so the views order Events of the same second correctly."""
        now = datetime.now(UTC)
        event = client.EventsV1Event(
            # `<object>.<unix nanoseconds in hex>`, as client-go's recorder names Events: the
            # events.k8s.io API refuses a generateName ending in a dot.
            metadata=client.V1ObjectMeta(
                name=f"{agent.name[:230]}.{time.time_ns():x}", namespace=agent.namespace
            ),
            regarding=client.V1ObjectReference(
                api_version=API_VERSION,
                kind=kind,
                name=agent.name,
                namespace=agent.namespace,
                uid=agent.uid,
            ),
            # A MicroTime always written with six digits: the apiserver parses RFC3339Micro,
            # and the client's `isoformat()` of a datetime drops the fraction when it is zero.
            # The client passes a string through unchanged.
            event_time=now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),  # type: ignore[arg-type]
            reporting_controller="aura.dev/operator",
            reporting_instance=os.environ.get("HOSTNAME", "aura-operator")[:128],
            action="Reconcile",  # required by events.k8s.io; every Event comes from a pass
            reason=reason[:128],
            note=message[:1024],
            type=type_,
        )
        await client.EventsV1Api(self._api).create_namespaced_event(agent.namespace, event)

    # AgentAnnotator
    async def annotate_agent(self, namespace: str, name: str, key: str, value: str) -> None:
        body = {"metadata": {"annotations": {key: value}}}
        # `_content_type` is honoured though missing from the stubs; without it the client
        # would send a JSON patch, which a dict body is not.
        merge: dict[str, Any] = {"_content_type": "application/merge-patch+json"}
        async with _classified(f"annotate Agent {namespace}/{name}"):
            await self._custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, body, **merge
            )

    async def list_agents(self, namespace: str | None) -> list[dict[str, Any]]:
        """Every Agent object (as a dict, without `metadata.managedFields`) in `namespace`, or
        in all namespaces. Read in pages of `LIST_PAGE`, each trimmed as it arrives, so a
        fleet of thousands is never held twice in full (watch_trim.py says why)."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page: dict[str, Any] = {"limit": LIST_PAGE}
            if token:
                page["_continue"] = token
            async with _classified("list Agents"):
                if namespace:
                    result = await self._custom.list_namespaced_custom_object(
                        GROUP, VERSION, namespace, PLURAL, **page
                    )
                else:
                    result = await self._custom.list_cluster_custom_object(
                        GROUP, VERSION, PLURAL, **page
                    )
            for item in result.get("items", []):
                watch_trim.drop_managed_fields(item)
                items.append(item)
            token = (result.get("metadata") or {}).get("continue")
            if not token:
                return items

    # PeeringReader (controller/peering.py)
    async def peering_records(
        self, name: str, namespace: str | None
    ) -> dict[str, dict[str, Any]] | None:
        """kopf's keep-alive records in the (Cluster)KopfPeering `name`; None if it is missing."""
        try:
            async with _classified(f"read peering {name}"):
                if namespace:
                    obj = await self._custom.get_namespaced_custom_object(
                        "kopf.dev", "v1", namespace, "kopfpeerings", name
                    )
                else:
                    obj = await self._custom.get_cluster_custom_object(
                        "kopf.dev", "v1", "clusterkopfpeerings", name
                    )
        except errors.NotFound:
            return None
        records: dict[str, dict[str, Any]] = obj.get("status") or {}
        return records
