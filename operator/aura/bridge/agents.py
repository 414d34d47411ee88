"""The Agent store: the bridge's only door to the Kubernetes API (kubernetes_asyncio).

Contracts:

- Reads return `Agent`, a typed read-only view of the object the apiserver served (the raw
  object stays available as `Agent.obj` for the status views).
- Every Kubernetes or network error leaves this module as a `BridgeError` (see `errors`):
  409 on a patch -> `Conflict`, 409 on a create -> `AlreadyExists`, 404 ->
  `NotFound`, 422 about reviving a deleted Agent -> `FinalState`, 429/5xx/timeouts/
  connection failures -> `Retryable`, any other 4xx -> `Permanent`.
- `patch()` is a compare-and-set: the merge patch carries the `resourceVersion` that was read,
  so the apiserver refuses it (409) if anyone wrote in between. The spec change and the
  bookkeeping annotations travel in that one patch, so they can never disagree.
- `find_by_subscription()` keeps an in-memory index (subscription -> agent keys) and the newest
  object seen per Agent (from our own writes and from the watch, `observe()`), so the hot path
  is a single PATCH. A stale cached object is harmless: its resourceVersion makes the patch
  fail with 409, which drops the cached copy, and the retry reads the Agent afresh.
- The store's client does not consult the environment on every request: see
  `_resolve_environment_once`.
- `before_write`, if set, runs between the read and the patch. Tests use it to provoke a real
  409 from the apiserver; production leaves it None.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import urllib.request
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from aura.bridge.errors import (
    AlreadyExists,
    BridgeError,
    Conflict,
    FinalState,
    NotFound,
    Permanent,
    Retryable,
)
from aura.history import Entry, ordered, read_events
from aura.models import GROUP, PLURAL, VERSION

log = logging.getLogger(__name__)
LABEL_CUSTOMER = "aura.dev/stripe-customer"
LABEL_SUBSCRIPTION = "aura.dev/stripe-subscription"
ANNOTATION_EVENT_ID = "aura.dev/stripe-last-event-id"
ANNOTATION_EVENT_CREATED = "aura.dev/stripe-last-event-created"
ANNOTATION_AS_OF = "aura.dev/stripe-state-as-of"
"""Unix time the applied state is known to be current at (re-read time or event `created`)."""
ANNOTATION_PAST_DUE_SINCE = "aura.dev/stripe-past-due-since"
ANNOTATION_HIBERNATE_AT = "aura.dev/stripe-hibernate-at"
"""Unix time an unpaid Agent is to be hibernated: the dunning timer, durable on the Agent."""

# The operator's final checkpoint of a deleted Agent (aura.controller.checkpoints.final: the same
# keys; the bridge does not import the operator). A returning customer's Agent starts from it.
LABEL_FINAL_CHECKPOINT = "aura.dev/final-checkpoint"
LABEL_RETAINED_AGENT = "aura.dev/retained-agent"
CHECKPOINT_PLURAL = "agentcheckpoints"

REQUEST_TIMEOUT = 5.0
WATCH_READ_BUFFER = 2**21
INDEX_SIZE = 50_000


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class Agent:
    """What the bridge reads of an Agent; `Agent.of(obj)` builds it from the served object.

    Only the fields the bridge decides on are typed; `obj` is the object itself, never
    modified, for the status views. Timestamps in annotations that do not parse are None."""

    namespace: str
    name: str
    resource_version: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    desired_state: str | None
    obj: Mapping[str, Any]

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> Agent:
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        return cls(
            namespace=str(meta.get("namespace", "")),
            name=str(meta.get("name", "")),
            resource_version=str(meta.get("resourceVersion", "")),
            labels=meta.get("labels") or {},
            annotations=meta.get("annotations") or {},
            desired_state=spec.get("desiredState"),
            obj=obj,
        )

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name

    @property
    def subscription_id(self) -> str | None:
        return self.labels.get(LABEL_SUBSCRIPTION)

    @property
    def last_event_id(self) -> str | None:
        return self.annotations.get(ANNOTATION_EVENT_ID)

    @property
    def state_as_of(self) -> float | None:
        return _float(self.annotations.get(ANNOTATION_AS_OF))

    @property
    def past_due_since(self) -> float | None:
        return _float(self.annotations.get(ANNOTATION_PAST_DUE_SINCE))

    @property
    def hibernate_at(self) -> float | None:
        return _float(self.annotations.get(ANNOTATION_HIBERNATE_AT))


# `_content_type` is missing from the client's stubs but honoured; without it the client sends
# a JSON patch content type for a dict body, and CRDs accept no strategic merge patch.
MERGE_PATCH: dict[str, Any] = {
    "_content_type": "application/merge-patch+json",
    "_request_timeout": REQUEST_TIMEOUT,
}
BeforeWrite = Callable[[Agent], Awaitable[None]]


def classify(exc: BaseException, *, creating: bool = False) -> BridgeError:
    """The `BridgeError` for an exception raised by the Kubernetes client."""
    if isinstance(exc, BridgeError):
        return exc
    if isinstance(exc, ApiException):
        status = exc.status or 0
        what = f"kubernetes API answered {status} {exc.reason or ''}".strip()
        if status == 409:
            return AlreadyExists(what) if creating else Conflict(what)
        if status == 404:
            return NotFound(what)
        if status == 422 and "deleted stays a record" in str(exc.body or ""):
            return FinalState("the Agent is a deleted record")
        if status == 429 or status >= 500 or status == 0:
            return Retryable(what)
        return Permanent(what)
    if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | OSError):
        return Retryable(f"kubernetes API unreachable ({type(exc).__name__})")
    return Retryable(f"unexpected error talking to kubernetes ({type(exc).__name__})")


def _resolve_environment_once(api: client.ApiClient) -> None:
    """kubernetes_asyncio opens its aiohttp session with `trust_env=True`, so every request
    first reads `~/.netrc` in a worker thread and scans the environment for proxies in
    another: two thread hand-offs and about 1 ms of CPU per call, paid by every webhook that
    writes. The environment does not change while the process runs, so the proxy for the
    apiserver (`HTTPS_PROXY`/`NO_PROXY`, unless the kubeconfig names one) is resolved here,
    once, and the session is replaced by one that does not look again. `.netrc` credentials
    are not used: the apiserver authenticates by certificate or token."""
    rest = api.rest_client
    session = rest.pool_manager
    if not session.trust_env:
        return
    host = urlsplit(api.configuration.host or "")
    proxy = urllib.request.getproxies().get(host.scheme)
    if proxy and not rest.proxy and not urllib.request.proxy_bypass(host.hostname or ""):
        rest.proxy = proxy
    connector = session.connector
    session.detach()  # hands the connection pool over without closing it
    # The read buffer kubernetes_asyncio chose: watch events can hold large objects.
    rest.pool_manager = aiohttp.ClientSession(
        connector=connector, trust_env=False, read_bufsize=WATCH_READ_BUFFER
    )


def key_of(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(namespace, name) of a raw Agent object."""
    meta = obj["metadata"]
    return str(meta["namespace"]), str(meta["name"])


class AgentStore:
    """Agent reads and writes for the bridge; see the module docstring."""

    def __init__(self, api: client.ApiClient, before_write: BeforeWrite | None = None) -> None:
        _resolve_environment_once(api)
        self.api = api
        self.custom = client.CustomObjectsApi(api)
        self.before_write = before_write
        self._index: OrderedDict[str, list[tuple[str, str]]] = OrderedDict()
        self._objects: OrderedDict[tuple[str, str], Agent] = OrderedDict()

    def observe(self, obj: Mapping[str, Any]) -> Agent:
        """Remember the served object `obj` unless a newer version of it is already cached;
        returns its view."""
        agent = Agent.of(obj)
        old = self._objects.get(agent.key)
        new_rv, old_rv = agent.resource_version, old.resource_version if old else ""
        # resourceVersions are opaque, but etcd's are integers: compare them when they are.
        if old and new_rv.isdigit() and old_rv.isdigit() and int(new_rv) < int(old_rv):
            return agent
        self._objects[agent.key] = agent
        self._objects.move_to_end(agent.key)
        while len(self._objects) > INDEX_SIZE:
            self._objects.popitem(last=False)
        return agent

    def forget(self, key: tuple[str, str]) -> None:
        self._objects.pop(key, None)

    async def _call(self, coro: Awaitable[Any], *, creating: bool = False) -> Any:
        try:
            return await coro
        except Exception as exc:
            raise classify(exc, creating=creating) from None

    async def get(self, namespace: str, name: str) -> Agent | None:
        """The Agent, or None if it does not exist."""
        try:
            result: dict[str, Any] = await self._call(
                self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name, _request_timeout=REQUEST_TIMEOUT
                )
            )
        except NotFound:
            self.forget((namespace, name))
            return None
        return self.observe(result)

    async def select(self, label_selector: str, namespace: str | None = None) -> list[Agent]:
        """Agents matching `label_selector`, cluster-wide unless `namespace` is given."""
        if namespace is None:
            coro = self.custom.list_cluster_custom_object(
                GROUP,
                VERSION,
                PLURAL,
                label_selector=label_selector,
                _request_timeout=REQUEST_TIMEOUT,
            )
        else:
            coro = self.custom.list_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                label_selector=label_selector,
                _request_timeout=REQUEST_TIMEOUT,
            )
        result = await self._call(coro)
        items: list[dict[str, Any]] = result.get("items", [])
        for item in items:
            item.setdefault("apiVersion", f"{GROUP}/{VERSION}")
            item.setdefault("kind", "Agent")
        return [Agent.of(item) for item in items]

    async def history(self, namespace: str, name: str) -> list[Entry]:
        """The Agent's Events in the order they happened (`aura.history`)."""
        events = await self._call(
            read_events(self.api, namespace, name, request_timeout=REQUEST_TIMEOUT)
        )
        return ordered(events)

    def remember(self, subscription_id: str, agents: list[Agent]) -> None:
        self._index[subscription_id] = [a.key for a in agents]
        self._index.move_to_end(subscription_id)
        while len(self._index) > INDEX_SIZE:
            self._index.popitem(last=False)

    async def find_by_subscription(self, subscription_id: str) -> list[Agent]:
        """The Agents labelled with this subscription (usually one)."""
        keys = self._index.get(subscription_id)
        if keys:
            found = [self._objects.get(k) or await self.get(*k) for k in keys]
            if all(a is not None and a.subscription_id == subscription_id for a in found):
                return [a for a in found if a is not None]
        agents = await self.select(f"{LABEL_SUBSCRIPTION}={subscription_id}")
        if agents:
            self.remember(subscription_id, agents)
        return agents

    async def create(self, body: dict[str, Any]) -> Agent:
        """Create the Agent `body` (a complete object); `AlreadyExists` if the name is taken."""
        namespace = body["metadata"]["namespace"]
        result: dict[str, Any] = await self._call(
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, body, _request_timeout=REQUEST_TIMEOUT
            ),
            creating=True,
        )
        return self.observe(result)

    async def retained_checkpoint(self, namespace: str, agent: str, customer: str) -> str | None:
        """The newest ready final checkpoint the operator kept of the Agent `agent` of
        `customer` (`--retain-after-delete`), or None."""
        selector = (
            f"{LABEL_FINAL_CHECKPOINT}=true,{LABEL_RETAINED_AGENT}={agent},"
            f"{LABEL_CUSTOMER}={customer}"
        )
        try:
            result = await self._call(
                self.custom.list_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    namespace,
                    CHECKPOINT_PLURAL,
                    label_selector=selector,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            )
        except Permanent as exc:  # e.g. RBAC without agentcheckpoints: a checkout still works
            log.warning("looking for a retained checkpoint of %s/%s: %s", namespace, agent, exc)
            return None
        ready = [
            item
            for item in result.get("items", [])
            if (item.get("status") or {}).get("phase") == "Succeeded"
            and (item.get("status") or {}).get("readyToUse")
            and not item["metadata"].get("deletionTimestamp")
        ]
        ready.sort(key=lambda item: str(item["status"].get("takenAt") or ""))
        return str(ready[-1]["metadata"]["name"]) if ready else None

    async def delete(self, agent: Agent) -> None:
        """Delete `agent` if it is still the object that was read (uid and resourceVersion
        preconditions); already gone counts as done."""
        options = client.V1DeleteOptions(
            preconditions=client.V1Preconditions(
                uid=(agent.obj.get("metadata") or {}).get("uid"),
                resource_version=agent.resource_version,
            )
        )
        with contextlib.suppress(NotFound):
            await self._call(
                self.custom.delete_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    agent.namespace,
                    PLURAL,
                    agent.name,
                    body=options,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            )
        self.forget(agent.key)

    async def patch(self, agent: Agent, patch: dict[str, Any]) -> Agent:
        """Merge-patch `agent` if it is unchanged since it was read (see the docstring)."""
        if self.before_write is not None:
            await self.before_write(agent)
        body = {
            **patch,
            "metadata": {**patch.get("metadata", {}), "resourceVersion": agent.resource_version},
        }
        try:
            result: dict[str, Any] = await self._call(
                self.custom.patch_namespaced_custom_object(
                    GROUP, VERSION, agent.namespace, PLURAL, agent.name, body, **MERGE_PATCH
                )
            )
        except BridgeError:
            self.forget(agent.key)
            raise
        return self.observe(result)
