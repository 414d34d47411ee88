"""Phase changes pushed to dashboards: one cluster-wide Agent watch, fanned out over SSE.

`AgentWatcher.run()` lists all Agents, then watches from that resourceVersion; on a 410
(history compacted) or any connection error it lists again after a short pause. It keeps the
last object per Agent and publishes its `AgentView` to the matching subscribers whenever the
phase, desired state or message changed, or the Agent was deleted. A subscriber's queue is
bounded: a client too slow to drain it is disconnected rather than growing memory.

`stream()` renders one subscription as `text/event-stream`: first `snapshot` events for the
current state, then `change` events, and a comment line every `keepalive` seconds so proxies
keep the connection open. With `idle_timeout`, a stream that carried no event for that long
ends (an EventSource reconnects by itself, re-authenticating): a dashboard that leaks streams
cannot hold them forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes_asyncio import watch

from aura.bridge.agents import AgentStore, classify, key_of
from aura.bridge.views import AgentView
from aura.models import GROUP, PLURAL, VERSION

log = logging.getLogger(__name__)
QUEUE_SIZE = 256
WATCH_TIMEOUT = 300
RELIST_PAUSE = 1.0
Filter = Callable[[AgentView], bool]


def _fingerprint(obj: dict[str, Any]) -> tuple[Any, ...]:
    """What a dashboard sees change; read from the raw object, so the (comparatively costly)
    view is only built for real changes. Bookkeeping writes of the bridge do not count."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return (
        status.get("phase"),
        spec.get("desiredState"),
        status.get("message"),
        (status.get("server") or {}).get("ipv4"),
        (status.get("tailscale") or {}).get("ipv4"),
    )


@dataclass(eq=False)
class Subscription:
    matches: Filter
    queue: asyncio.Queue[tuple[str, AgentView] | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_SIZE)
    )


class AgentWatcher:
    """See the module docstring."""

    def __init__(self, store: AgentStore) -> None:
        self.store = store
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.synced = asyncio.Event()
        self._subscribers: set[Subscription] = set()

    def subscribe(self, matches: Filter) -> Subscription:
        sub = Subscription(matches)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    def _publish(self, kind: str, view: AgentView) -> None:
        for sub in list(self._subscribers):
            if not sub.matches(view):
                continue
            try:
                sub.queue.put_nowait((kind, view))
            except asyncio.QueueFull:
                self._subscribers.discard(sub)
                with contextlib.suppress(asyncio.QueueEmpty):
                    sub.queue.get_nowait()
                sub.queue.put_nowait(None)  # tells the stream to end

    def _observe(self, event_type: str, obj: dict[str, Any]) -> None:
        key = key_of(obj)
        if event_type == "DELETED":
            self.store.forget(key)
            self.objects.pop(key, None)
            self._publish("deleted", AgentView.of(obj))
            return
        if "resourceVersion" in obj.get("metadata", {}):
            self.store.observe(obj)
        old = self.objects.get(key)
        self.objects[key] = obj
        if self._subscribers and (old is None or _fingerprint(old) != _fingerprint(obj)):
            self._publish("change", AgentView.of(obj))

    async def run(self) -> None:
        """Watch forever; cancel the task to stop."""
        while True:
            try:
                await self._list_and_watch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.synced.clear()
                log.warning("agent watch interrupted (%s); relisting", classify(exc))
                await asyncio.sleep(RELIST_PAUSE)

    async def _list_and_watch(self) -> None:
        listing = await self.store.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
        seen = set()
        for obj in listing.get("items", []):
            seen.add(key_of(obj))
            self._observe("MODIFIED", obj)
        for key in set(self.objects) - seen:
            self._observe("DELETED", {"metadata": {"namespace": key[0], "name": key[1]}})
        self.synced.set()
        version = listing["metadata"]["resourceVersion"]
        while True:
            w = watch.Watch()
            async with w.stream(
                self.store.custom.list_cluster_custom_object,
                GROUP,
                VERSION,
                PLURAL,
                resource_version=version,
                timeout_seconds=WATCH_TIMEOUT,
                allow_watch_bookmarks=True,
            ) as stream:
                async for event in stream:
                    obj = event["object"] if isinstance(event, dict) else None
                    if event.get("type") == "ERROR" or not isinstance(obj, dict):
                        raise RuntimeError("watch returned an error event")
                    version = obj.get("metadata", {}).get("resourceVersion", version)
                    if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        self._observe(event["type"], obj)

    async def stream(
        self,
        matches: Filter,
        keepalive: float = 15.0,
        limit: int | None = None,
        idle_timeout: float = 0,
    ) -> AsyncIterator[str]:
        """SSE text for one subscription; ends after `limit` change events if given, or after
        `idle_timeout` seconds without one (0: never)."""
        sub = self.subscribe(matches)
        last = time.monotonic()
        try:
            for key in sorted(self.objects):
                view = AgentView.of(self.objects[key])
                if matches(view):
                    yield _sse("snapshot", view)
            sent = 0
            while limit is None or sent < limit:
                wait = keepalive
                if idle_timeout:
                    left = last + idle_timeout - time.monotonic()
                    if left <= 0:
                        return
                    wait = min(wait, left)
                try:
                    item = await asyncio.wait_for(sub.queue.get(), wait)
                except TimeoutError:
                    # The loop's timer may fire a hair before the idle deadline: a wait that
                    # was cut short by it is the idle end, not a keep-alive.
                    if not idle_timeout or wait < left:
                        yield ": keepalive\n\n"
                    continue
                if item is None:
                    return
                yield _sse(*item)
                sent += 1
                last = time.monotonic()
        finally:
            self.unsubscribe(sub)


def _sse(kind: str, view: AgentView) -> str:
    return f"event: {kind}\ndata: {json.dumps(view.wire(), separators=(',', ':'))}\n\n"
