"""What one reconcile of one Agent works on, and the typed results its steps return.

A step is `async def ensure_x(ctx) -> Done | Wait`: it reads the real state, changes only
what differs, records what it saw in `ctx.status` (a working copy written back once, at the
end, by the handler) and either lets the next step run (`Done`) or stops the pass until later
(`Wait`). Failures are raised as `aura.controller.errors`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from aura.controller import conditions, errors, naming
from aura.controller.clients.kube import AgentRef
from aura.controller.runtime import Operator
from aura.controller.settings import OperatorConfig
from aura.models import DEFAULT_TAGS, AgentSpec, AgentStatus, ConditionStatus


@dataclass(frozen=True)
class Done:
    """The step's part of the world is as desired; go on."""


@dataclass(frozen=True)
class Wait:
    """Not there yet (booting, joining, ...); come back after `delay` seconds."""

    delay: float
    reason: str


StepResult = Done | Wait
DONE = Done()

Logger = logging.Logger | logging.LoggerAdapter[Any]
EventType = Literal["Normal", "Warning"]


@dataclass
class AgentContext:
    """One Agent during one reconcile pass."""

    op: Operator
    ref: AgentRef
    spec: AgentSpec
    generation: int
    annotations: dict[str, str]
    status: AgentStatus
    log: Logger
    events: list[tuple[EventType, str, str]] = field(default_factory=list)
    step: str = ""  # the step running (or where the pass stopped), for logs

    @property
    def config(self) -> OperatorConfig:
        return self.op.config

    @property
    def server_name(self) -> str:
        return naming.server_name(self.ref)

    @property
    def hostname(self) -> str:
        return naming.tailnet_hostname(self.ref, self.spec.tailscale.hostname)

    @property
    def hostnames(self) -> set[str]:
        """Hostnames this Agent's device may carry: `hostname`, and the legacy server name of a
        device enrolled before the naming change (see `naming.legacy_server_name`)."""
        if self.spec.tailscale.hostname:
            return {self.spec.tailscale.hostname}
        return naming.server_names(self.ref)

    @property
    def tags(self) -> list[str]:
        """The spec's tags, or the operator's `--default-tags` when the spec kept the default."""
        tags = list(self.spec.tailscale.tags)
        return list(self.config.default_tags) if tags == list(DEFAULT_TAGS) else tags

    def set(self, type_: str, status: ConditionStatus, reason: str, message: str = "") -> None:
        if conditions.set_condition(
            self.status.conditions, type_, status, reason, message, generation=self.generation
        ):
            self.log.info("condition %s=%s (%s) %s", type_, status.value, reason, message)

    def since(self, type_: str) -> float:
        """Seconds since `type_` last changed status (0 if it never had one)."""
        found = conditions.get_condition(self.status.conditions, type_)
        if found is None:
            return 0.0
        return (conditions.now() - found.last_transition_time).total_seconds()

    def fail_after(
        self, type_: str, timeout: float, step: str, message: str, *, reason: str
    ) -> None:
        """While provisioning, give up `step` once `type_` has been waiting over `timeout` s."""
        if self.status.provisioning is not None and self.since(type_) > timeout:
            raise errors.StepFailed(step, message, reason=reason)

    def event(self, type_: EventType, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))
        level = logging.WARNING if type_ == "Warning" else logging.INFO
        self.log.log(level, "event %s: %s", reason, message)

    def seconds_since(self, at: datetime | None) -> float:
        return (conditions.now() - at).total_seconds() if at is not None else 0.0
