"""First dedup layer: the ids of events this process finished, bounded (`Lru`).

An id is remembered only once its event was recorded or deliberately not acted on, so an
event that failed with `Retryable` is processed again when Stripe redelivers it. The second
layer, for redeliveries this memory no longer holds (or another replica saw), is the event id
recorded on the Agent itself (`apply`).
"""

from __future__ import annotations

from aura.bridge.lru import Lru


class RecentEvents:
    def __init__(self, size: int) -> None:
        self._ids: Lru[str, None] = Lru(size)

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        self._ids.put(event_id, None)
