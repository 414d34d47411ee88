"""What the simulated tailnet needs from the sandbox world (`aura_sandbox.world.World`).

Structural types, so tests may drive the tailnet with a stub world: a clock, a scheduler of
simulated delays, the fault registry and the autosave flag.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class ServerLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def user_data(self) -> str | None: ...
    @property
    def first_boot(self) -> bool: ...


class FaultsLike(Protocol):
    def consume(self, kind: str, **match: Any) -> object | None: ...


class WorldLike(Protocol):
    @property
    def faults(self) -> FaultsLike: ...
    def now(self) -> datetime: ...
    def mark_dirty(self) -> None: ...
    def schedule(self, delay: float, callback: Callable[[], Any]) -> Cancellable: ...
