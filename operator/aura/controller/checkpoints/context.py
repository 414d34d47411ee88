"""What one pass over one AgentCheckpoint or AgentRestore works on.

Like `reconcile.context.AgentContext`: the object's parsed spec and a working copy of its
status, written back once at the end of the pass (only the keys that changed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aura.configure.base import ConfigTarget
from aura.controller import conditions, errors
from aura.controller.checkpoints.store import CheckpointStore, Obj
from aura.controller.clients.hetzner_api import ServerInfo
from aura.controller.clients.kube import AgentRef
from aura.controller.reconcile import secrets
from aura.controller.reconcile.context import AgentContext, Logger
from aura.controller.runtime import Operator
from aura.models import PLURAL, AgentSpec, AgentStatus
from aura.wire import Condition, ConditionStatus

READY, PROGRESSING, FAILURE = "Ready", "Progressing", "Failure"


@dataclass
class ObjectContext:
    """One AgentCheckpoint or AgentRestore during one pass."""

    op: Operator
    namespace: str
    name: str
    uid: str
    generation: int
    created: datetime
    log: Logger
    conditions: list[Condition]
    agent: Obj | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)
    released: bool = False
    """This pass let go of the Agent: run the Agent's own pass now, so its phase follows."""

    @property
    def store(self) -> CheckpointStore:
        assert self.op.checkpoints is not None
        return self.op.checkpoints

    def set(self, type_: str, status: ConditionStatus, reason: str, message: str = "") -> None:
        conditions.set_condition(
            self.conditions, type_, status, reason, message, generation=self.generation
        )

    def event(self, type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))
        self.log.info("event %s: %s", reason, message)

    async def load_agent(self, name: str) -> Obj:
        """The Agent named `name`; `errors.Permanent` if it does not exist."""
        agent = await self.store.get(PLURAL, self.namespace, name)
        if agent is None:
            raise errors.Permanent(
                f"Agent {name} not found in namespace {self.namespace}", reason="AgentNotFound"
            )
        self.agent = agent
        return agent

    def agent_ref(self) -> AgentRef:
        assert self.agent is not None
        meta = self.agent["metadata"]
        return AgentRef(meta["namespace"], meta["name"], meta["uid"])

    def agent_status(self) -> AgentStatus:
        assert self.agent is not None
        return AgentStatus.model_validate(dict(self.agent.get("status") or {}))

    def agent_server_id(self) -> int | None:
        server = self.agent_status().server
        return server.id if server is not None else None

    async def server(self, server_id: int) -> ServerInfo:
        found = await self.op.servers.get(server_id, self.op.config.server_list_max_age)
        if found is None:
            found = await self.op.hetzner.get_server(server_id)  # NotFound flies
        return found

    def agent_context(self) -> AgentContext:
        """The Agent as its own reconcile sees it (for the configurator's target)."""
        assert self.agent is not None
        meta = self.agent["metadata"]
        return AgentContext(
            op=self.op,
            ref=self.agent_ref(),
            spec=AgentSpec.model_validate(dict(self.agent.get("spec") or {})),
            generation=int(meta.get("generation") or 0),
            annotations=dict(meta.get("annotations") or {}),
            status=self.agent_status(),
            log=self.log,
        )

    async def gateway_target(self) -> ConfigTarget:
        """Where and how to reach the Agent's host, exactly as the configurator does."""
        from aura.controller.reconcile.configure import config_target

        ctx = self.agent_context()
        return await config_target(ctx, await secrets.ensure_ssh_material(ctx))


def seconds_since(at: datetime | None) -> float:
    return (conditions.now() - at).total_seconds() if at is not None else 0.0


def dump(status: Any) -> dict[str, Any]:
    out: dict[str, Any] = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    return out
