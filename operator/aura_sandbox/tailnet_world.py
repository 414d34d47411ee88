"""What the simulated tailnet needs from the sandbox world (`aura_sandbox.world.World`).

Structural types, so tests may drive the tailnet with a stub world: a clock, a scheduler of
simulated delays, the fault registry, the autosave flag, and the servers (whose disks hold
tailscaled's state file).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
    @property
    def disk(self) -> dict[str, bytes]: ...


class FaultsLike(Protocol):
    def consume(self, kind: str, **match: Any) -> object | None: ...


class WorldLike(Protocol):
    @property
    def faults(self) -> FaultsLike: ...
    @property
    def servers(self) -> Mapping[int, ServerLike]: ...
    def now(self) -> datetime: ...
    def mark_dirty(self) -> None: ...
    def schedule(self, delay: float, callback: Callable[[], Any]) -> Cancellable: ...
