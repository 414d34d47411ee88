"""Following the demo's Agents with a Kubernetes watch, so no phase goes unseen.

A poll samples: a phase that lasts less than the poll interval (Networking often lasts a tenth
of a second in the sandbox) is never printed. A watch delivers every write to the Agent in the
order it happened, so every phase the operator writes is printed, however short. The watch
starts from the resourceVersion of a list, and resumes from the last version it saw when the
apiserver closes it; only if the watch breaks (that version compacted away, 410 Gone, or the
connection lost) can a phase be missed, and the watcher then says so and lists again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from kubernetes_asyncio import client, watch

from aura.models import GROUP, PLURAL, VERSION
from aura_demo.story import Story

WATCH_TIMEOUT = 60  # seconds the apiserver keeps one watch request open


@dataclass
class Track:
    """One Agent as the watcher has seen it."""

    phase: str | None = None
    since: float = field(default_factory=time.monotonic)
    history: list[tuple[float, str]] = field(default_factory=list)


class PhaseWatcher:
    """Watches the Agents named in `names` in one namespace and prints each phase change with
    how long the previous phase took."""

    def __init__(
        self, api: client.CustomObjectsApi, namespace: str, names: set[str], story: Story
    ) -> None:
        self.api, self.namespace, self.names, self.story = api, namespace, names, story
        self.tracks: dict[str, Track] = {}
        self.changed = asyncio.Event()

    async def run(self) -> None:
        """List, then watch from the list's resourceVersion; runs until cancelled. If the watch
        breaks (410 Gone, a dropped connection) it says so and lists again."""
        while True:
            try:
                listing = await self.api.list_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL
                )
                for obj in listing.get("items", []):
                    self._observe(obj)
                version = listing["metadata"]["resourceVersion"]
                while True:
                    version = await self._watch_from(version)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the demo goes on; a relist catches up with the present
                self.story.say(f"  (the Agent watch broke: {exc!r:.80}; listing again)")
                await asyncio.sleep(1)

    async def _watch_from(self, version: str) -> str:
        w = watch.Watch()
        async with w.stream(
            self.api.list_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            resource_version=version,
            timeout_seconds=WATCH_TIMEOUT,
            allow_watch_bookmarks=True,
        ) as stream:
            async for event in stream:
                obj = event.get("object")
                if event.get("type") == "ERROR" or not isinstance(obj, dict):
                    code = obj.get("code") if isinstance(obj, dict) else None
                    raise client.ApiException(status=code or 0, reason="watch error event")
                version = obj.get("metadata", {}).get("resourceVersion", version)
                if event["type"] in ("ADDED", "MODIFIED"):
                    self._observe(obj)
        return version

    def _observe(self, obj: dict[str, Any]) -> None:
        name = obj.get("metadata", {}).get("name", "")
        if name not in self.names:
            return
        track = self.tracks.get(name)
        if track is None:
            track = self.tracks[name] = Track()
            self.story.say(f"  Agent {self.namespace}/{name} created by the bridge")
        phase = (obj.get("status") or {}).get("phase")
        desired = (obj.get("spec") or {}).get("desiredState")
        if phase and phase != track.phase:
            now = time.monotonic()
            took = f" (previous phase took {now - track.since:.1f}s)" if track.phase else ""
            self.story.say(f"  {name}: phase {phase} [desired {desired}]{took}")
            track.phase, track.since = phase, now
            track.history.append((now, phase))
            self.changed.set()

    def phase(self, name: str) -> str | None:
        track = self.tracks.get(name)
        return track.phase if track else None

    def path(self, name: str, after: float) -> list[str]:
        """The phases `name` entered at or after monotonic time `after`, in order."""
        track = self.tracks.get(name)
        return [p for t, p in track.history if t >= after] if track else []

    async def wait_for(
        self, name: str, phase: str, after: float, limit: float, *, stays: bool = False
    ) -> bool:
        """True once `name` entered `phase` at or after monotonic time `after`, within `limit`
        seconds from now. With `stays` (a step that must leave the phase as it is) also True
        while `name` is still in `phase`, having left it for none other since `after`."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            path = self.path(name, after)
            if phase in path or (stays and not path and self.phase(name) == phase):
                return True
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), timeout=0.5)
        return False
