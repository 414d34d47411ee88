"""Early-event memory: without a re-read, a subscription's events may arrive before the
checkout that creates its Agent. The newest state seen (from an event's own object) for a
subscription that has no Agent yet is kept here, bounded, and a later checkout uses it when it
is newer than the checkout's own state. Re-read states are not kept: the checkout re-reads too.
"""

from __future__ import annotations

from aura.bridge.lru import Lru
from aura.bridge.observe import Observed


class EarlyStates:
    def __init__(self, size: int) -> None:
        self._states: Lru[str, tuple[Observed, str]] = Lru(size)

    def note(self, sub_id: str, observed: Observed, reason: str) -> None:
        """Keep `observed` (and its reason text) unless a newer state is already kept."""
        known = self._states.get(sub_id)
        if known is None or known[0].as_of <= observed.as_of:
            self._states.put(sub_id, (observed, reason))

    def newer_than(self, sub_id: str, as_of: float) -> tuple[Observed, str] | None:
        """The kept state and reason if it is newer than `as_of`."""
        known = self._states.get(sub_id)
        return known if known is not None and known[0].as_of > as_of else None

    def forget(self, sub_id: str) -> None:
        self._states.pop(sub_id)
