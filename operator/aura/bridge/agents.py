"""The Agent store: the bridge's only door to the Kubernetes API (kubernetes_asyncio).

Contracts:

- Every Kubernetes or network error leaves this module as a `BridgeError` (see `errors`):
  409 on a patch -> `ConflictError`, 409 on a create -> `AlreadyExistsError`, 404 ->
  `NotFoundError`, 422 about reviving a deleted Agent -> `FinalStateError`, 429/5xx/timeouts/
  connection failures -> `RetryableError`, any other 4xx -> `PermanentError`.
- `patch()` is a compare-and-set: the merge patch carries the `resourceVersion` that was read,
  so the apiserver refuses it (409) if anyone wrote in between. The spec change and the
  bookkeeping annotations travel in that one patch, so they can never disagree.
- `find_by_subscription()` keeps an in-memory index (subscription -> agent keys) and the newest
  object seen per Agent (from our own writes and from the watch, `observe()`), so the hot path
  is a single PATCH. A stale cached object is harmless: its resourceVersion makes the patch
  fail with 409, which drops the cached copy, and the retry reads the Agent afresh.
- `before_write`, if set, runs between the read and the patch. Tests use it to provoke a real
  409 from the apiserver; production leaves it None.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from aura.bridge.errors import (
    AlreadyExistsError,
    BridgeError,
    ConflictError,
    FinalStateError,
    NotFoundError,
    PermanentError,
    RetryableError,
)
from aura.history import Entry, ordered, read_events
from aura.models import GROUP, PLURAL, VERSION

LABEL_CUSTOMER = "aura.dev/stripe-customer"
LABEL_SUBSCRIPTION = "aura.dev/stripe-subscription"
ANNOTATION_EVENT_ID = "aura.dev/stripe-last-event-id"
ANNOTATION_EVENT_CREATED = "aura.dev/stripe-last-event-created"
ANNOTATION_AS_OF = "aura.dev/stripe-state-as-of"
"""Unix time the applied state is known to be current at (re-read time or event `created`)."""
ANNOTATION_PAST_DUE_SINCE = "aura.dev/stripe-past-due-since"

REQUEST_TIMEOUT = 5.0
INDEX_SIZE = 50_000

Agent = dict[str, Any]
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
            return AlreadyExistsError(what) if creating else ConflictError(what)
        if status == 404:
            return NotFoundError(what)
        if status == 422 and "deleted stays a record" in str(exc.body or ""):
            return FinalStateError("the Agent is a deleted record")
        if status == 429 or status >= 500 or status == 0:
            return RetryableError(what)
        return PermanentError(what)
    if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | OSError):
        return RetryableError(f"kubernetes API unreachable ({type(exc).__name__})")
    return RetryableError(f"unexpected error talking to kubernetes ({type(exc).__name__})")


def key_of(agent: Agent) -> tuple[str, str]:
    meta = agent["metadata"]
    return str(meta["namespace"]), str(meta["name"])


class AgentStore:
    """Agent reads and writes for the bridge; see the module docstring."""

    def __init__(self, api: client.ApiClient, before_write: BeforeWrite | None = None) -> None:
        self.api = api
        self.custom = client.CustomObjectsApi(api)
        self.before_write = before_write
        self._index: OrderedDict[str, list[tuple[str, str]]] = OrderedDict()
        self._objects: OrderedDict[tuple[str, str], Agent] = OrderedDict()

    def observe(self, agent: Agent) -> None:
        """Remember `agent` unless a newer version of it is already cached."""
        key = key_of(agent)
        old = self._objects.get(key)
        new_rv = str(agent["metadata"].get("resourceVersion", ""))
        old_rv = str(old["metadata"].get("resourceVersion", "")) if old else ""
        # resourceVersions are opaque, but etcd's are integers: compare them when they are.
        if old and new_rv.isdigit() and old_rv.isdigit() and int(new_rv) < int(old_rv):
            return
        self._objects[key] = agent
        self._objects.move_to_end(key)
        while len(self._objects) > INDEX_SIZE:
            self._objects.popitem(last=False)

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
            result: Agent = await self._call(
                self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name, _request_timeout=REQUEST_TIMEOUT
                )
            )
        except NotFoundError:
            self.forget((namespace, name))
            return None
        self.observe(result)
        return result

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
        items: list[Agent] = result.get("items", [])
        for item in items:
            item.setdefault("apiVersion", f"{GROUP}/{VERSION}")
            item.setdefault("kind", "Agent")
        return items

    async def history(self, namespace: str, name: str) -> list[Entry]:
        """The Agent's Events in the order they happened (`aura.history`)."""
        events = await self._call(
            read_events(self.api, namespace, name, request_timeout=REQUEST_TIMEOUT)
        )
        return ordered(events)

    def remember(self, subscription_id: str, agents: list[Agent]) -> None:
        self._index[subscription_id] = [key_of(a) for a in agents]
        self._index.move_to_end(subscription_id)
        while len(self._index) > INDEX_SIZE:
            self._index.popitem(last=False)

    async def find_by_subscription(self, subscription_id: str) -> list[Agent]:
        """The Agents labelled with this subscription (usually one)."""
        keys = self._index.get(subscription_id)
        if keys:
            found = [self._objects.get(k) or await self.get(*k) for k in keys]
            if all(
                a is not None
                and a["metadata"].get("labels", {}).get(LABEL_SUBSCRIPTION) == subscription_id
                for a in found
            ):
                return [a for a in found if a is not None]
        agents = await self.select(f"{LABEL_SUBSCRIPTION}={subscription_id}")
        if agents:
            self.remember(subscription_id, agents)
        return agents

    async def create(self, body: Agent) -> Agent:
        """Create the Agent; `AlreadyExistsError` if the name is taken."""
        namespace = body["metadata"]["namespace"]
        result: Agent = await self._call(
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, body, _request_timeout=REQUEST_TIMEOUT
            ),
            creating=True,
        )
        self.observe(result)
        return result

    async def patch(self, agent: Agent, patch: dict[str, Any]) -> Agent:
        """Merge-patch `agent` if it is unchanged since it was read (see the docstring)."""
        if self.before_write is not None:
            await self.before_write(agent)
        namespace, name = key_of(agent)
        body = {
            **patch,
            "metadata": {
                **patch.get("metadata", {}),
                "resourceVersion": agent["metadata"]["resourceVersion"],
            },
        }
        try:
            result: Agent = await self._call(
                self.custom.patch_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name, body, **MERGE_PATCH
                )
            )
        except BridgeError:
            self.forget((namespace, name))
            raise
        self.observe(result)
        return result
