"""Named one-shot timers of the tailnet (joins, reconnects, ephemeral clean-ups).

One timer per name, a `(kind, id)` pair: arming a name again replaces its timer, and a timer
forgets its name before its callback runs, so the callback may re-arm it. Delays are simulated
seconds; the world's scheduler applies the time scale.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from aura_sandbox.tailnet_world import Cancellable

TimerName = tuple[str, str]
Scheduler = Callable[[float, Callable[[], Any]], Cancellable]


class Timers:
    def __init__(self, schedule: Scheduler) -> None:
        self._schedule = schedule
        self._handles: dict[TimerName, Cancellable] = {}

    def set(self, name: TimerName, delay: float, fn: Callable[[], None]) -> None:
        self.cancel(name)

        def fire() -> None:
            self._handles.pop(name, None)
            fn()

        self._handles[name] = self._schedule(delay, fire)

    def cancel(self, name: TimerName) -> None:
        handle = self._handles.pop(name, None)
        if handle is not None:
            handle.cancel()

    def armed(self, name: TimerName) -> bool:
        return name in self._handles

    def cancel_all(self) -> None:
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()


def simulated_until(due: datetime, now: datetime, time_scale: float) -> float:
    """Simulated seconds from `now` to the world time `due` (never negative)."""
    wall = max((due - now).total_seconds(), 0.0)
    return wall / time_scale if time_scale > 0 else 0.0
