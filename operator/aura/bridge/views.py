"""`AgentView`: the public JSON shape of an Agent in the status API and its SSE stream.

Only what a dashboard needs; never secrets (the runtime Secret's name is not even shown).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from aura.bridge.agents import ANNOTATION_EVENT_CREATED, ANNOTATION_EVENT_ID, LABEL_CUSTOMER
from aura.history import Entry


class _View(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class ConditionView(_View):
    type: str
    status: str
    reason: str | None = None
    message: str | None = None
    last_transition_time: str | None = None


class AgentView(_View):
    namespace: str
    name: str
    phase: str | None = None
    phase_since: str | None = None
    message: str | None = None
    desired_state: str | None = None
    desired_state_reason: str | None = None
    customer_id: str | None = None
    subscription_id: str | None = None
    conditions: list[ConditionView] = []
    public_ipv4: str | None = None
    public_ipv6: str | None = None
    tailnet_ipv4: str | None = None
    tailnet_ipv6: str | None = None
    created_at: str | None = None
    last_stripe_event_id: str | None = None
    last_stripe_event_created: int | None = None
    cost: dict[str, Any] | None = None
    """`status.cost` as the operator writes it, when it does."""

    @classmethod
    def of(cls, agent: Mapping[str, Any]) -> AgentView:
        """The view of an Agent object as the apiserver returns it."""
        meta = agent.get("metadata") or {}
        spec = agent.get("spec") or {}
        status = agent.get("status") or {}
        billing = spec.get("billing") or {}
        server = status.get("server") or {}
        tailnet = status.get("tailscale") or {}
        annotations = meta.get("annotations") or {}
        created = annotations.get(ANNOTATION_EVENT_CREATED)
        return cls(
            namespace=meta.get("namespace", ""),
            name=meta.get("name", ""),
            phase=status.get("phase"),
            phase_since=status.get("phaseSince"),
            message=status.get("message"),
            desired_state=spec.get("desiredState"),
            desired_state_reason=spec.get("desiredStateReason"),
            customer_id=billing.get("customerId") or (meta.get("labels") or {}).get(LABEL_CUSTOMER),
            subscription_id=billing.get("subscriptionId"),
            conditions=[
                ConditionView.model_validate(c)
                for c in status.get("conditions") or []
                if isinstance(c, dict) and "type" in c and "status" in c
            ],
            public_ipv4=server.get("ipv4"),
            public_ipv6=server.get("ipv6"),
            tailnet_ipv4=tailnet.get("ipv4"),
            tailnet_ipv6=tailnet.get("ipv6"),
            created_at=meta.get("creationTimestamp"),
            last_stripe_event_id=annotations.get(ANNOTATION_EVENT_ID),
            last_stripe_event_created=int(created) if created and created.isdigit() else None,
            cost=status.get("cost") if isinstance(status.get("cost"), dict) else None,
        )

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class EventView(_View):
    """One entry of an Agent's history: a Kubernetes Event about it."""

    time: str | None = None
    type: str
    reason: str
    message: str
    reporter: str

    @classmethod
    def of(cls, entry: Entry) -> EventView:
        # Microseconds always shown, so clients can order entries by `time` as well.
        when = entry.time.isoformat(timespec="microseconds") if entry.time else None
        return cls(
            time=when,
            type=entry.type,
            reason=entry.reason,
            message=entry.message,
            reporter=entry.reporter,
        )


class HistoryView(_View):
    """An Agent's Events, oldest first, in the order they happened."""

    namespace: str
    name: str
    items: list[EventView]
