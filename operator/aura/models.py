"""The Agent custom resource as pydantic models: the single source of truth for its schema.

`crds/aura.dev_agents.yaml` is generated from these models (`make crds`, i.e. `aura crd`),
so every constraint written here is enforced twice: by the kube-apiserver at admission
(OpenAPI + CEL) and by the operator when it parses a spec (belt and braces: a CRD installed
from an older release may be laxer than the code).

Field names are camelCase on the wire, as Kubernetes API conventions require; Python code
uses snake_case attributes.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from aura.checkpoint_models import AgentSource, CheckpointPolicy, CheckpointScheduleStatus
from aura.cost.wire import CostStatus, SubscriptionPrice
from aura.healing_models import HealingPolicy, HealingStatus
from aura.status_models import ProvisioningStatus, ServerStatus, TailnetStatus
from aura.wire import (
    API_VERSION,
    DNS_NAME_PATTERN,
    GROUP,
    VERSION,
    Condition,
    ConditionStatus,
    ObjectMeta,
    wire_default,
)
from aura.wire import Wire as _Wire

__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "Condition",
    "ConditionStatus",
    "ObjectMeta",
    "ProvisioningStatus",
    "ServerStatus",
    "TailnetStatus",
    "wire_default",
]

KIND = "Agent"
PLURAL = "agents"
SINGULAR = "agent"

# Patterns are anchored and kept deliberately narrow: a typo must fail at `kubectl apply`,
# not minutes later inside a Hetzner API call that bills by the hour.
SERVER_TYPE_PATTERN = r"^[a-z]{2,4}[0-9]{1,3}[a-z]{0,2}$"
LOCATION_PATTERN = r"^[a-z]{3}[0-9]?$"
IMAGE_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
TAG_PATTERN = r"^tag:[a-z0-9-]+$"
HOSTNAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
SECRET_NAME_PATTERN = DNS_NAME_PATTERN
VERSION_PATTERN = r"^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$"
CUSTOMER_ID_PATTERN = r"^cus_[A-Za-z0-9]{1,250}$"
SUBSCRIPTION_ID_PATTERN = r"^sub_[A-Za-z0-9]{1,250}$"

DEFAULT_TAGS = ("tag:aura-agent",)
DEFAULT_GATEWAY_PORT = 18789  # OpenClaw's own default; one port serves HTTP and WebSocket.


class DesiredState(StrEnum):
    """What the owner of an Agent wants; the operator converges the real world to it."""

    RUNNING = "running"
    STOPPED = "stopped"
    SUSPENDED = "suspended"
    HIBERNATED = "hibernated"
    DELETED = "deleted"


class Phase(StrEnum):
    """Where an Agent is, derived from its conditions; shown by `kubectl get agents`."""

    QUEUED = "Queued"
    PROVISIONING = "Provisioning"
    CONFIGURING = "Configuring"
    NETWORKING = "Networking"
    STARTING = "Starting"  # powering a configured server back on after a stop
    RUNNING = "Running"
    DEGRADED = "Degraded"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    SUSPENDED = "Suspended"
    DELETING = "Deleting"
    DELETED = "Deleted"
    FAILED = "Failed"
    CHECKPOINTING = "Checkpointing"  # an AgentCheckpoint holds the Agent (checkpoint_models)
    RESTORING = "Restoring"  # an AgentRestore is rebuilding its server


class ServerSpec(_Wire):
    """The Hetzner Cloud server an Agent runs on. Type, location and image are fixed at birth."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.type == oldSelf.type",
                    "message": "spec.server.type is immutable: create a new Agent to change "
                    "the server type",
                },
                {
                    "rule": "self.location == oldSelf.location",
                    "message": "spec.server.location is immutable: create a new Agent to move "
                    "it to another location",
                },
                {
                    "rule": "self.image == oldSelf.image",
                    "message": "spec.server.image is immutable: create a new Agent to use "
                    "another image",
                },
            ]
        }
    )

    type: Annotated[
        str,
        Field(
            default="cx22",
            max_length=16,
            pattern=SERVER_TYPE_PATTERN,
            description="Hetzner server type name, e.g. cx22, cpx31, cax11.",
        ),
    ]
    location: Annotated[
        str,
        Field(
            default="nbg1",
            max_length=8,
            pattern=LOCATION_PATTERN,
            description="Hetzner location name, e.g. nbg1, fsn1, hel1, ash, hil, sin. "
            "(Datacenters are not accepted: the Hetzner API has removed them.)",
        ),
    ]
    image: Annotated[
        str,
        Field(
            default="ubuntu-24.04",
            max_length=63,
            pattern=IMAGE_PATTERN,
            description="Hetzner image name, e.g. ubuntu-24.04.",
        ),
    ]


class SecretRef(_Wire):
    """A Secret in the Agent's namespace."""

    name: Annotated[str, Field(max_length=253, pattern=SECRET_NAME_PATTERN)]


class RuntimeSpec(_Wire):
    """The agent runtime: an OpenClaw gateway, pinned to one version."""

    openclaw_version: Annotated[
        str,
        Field(
            default="2026.3.1",
            max_length=64,
            pattern=VERSION_PATTERN,
            description="Pinned OpenClaw release, e.g. 2026.3.1 (never 'latest').",
        ),
    ]
    secret_ref: Annotated[
        SecretRef | None,
        Field(
            default=None,
            description="Secret holding provider API keys (keys ending in _API_KEY) and "
            "OPENCLAW_GATEWAY_TOKEN; copied to the server's ~/.openclaw/.env.",
        ),
    ]
    gateway_port: Annotated[
        int,
        Field(default=DEFAULT_GATEWAY_PORT, ge=1024, le=65535, description="Gateway port."),
    ]
    settings: Annotated[
        dict[str, Any],
        Field(
            default_factory=dict,
            description="Extra OpenClaw settings merged into openclaw.json.",
            json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
        ),
    ]


class TailscaleSpec(_Wire):
    """How the server joins the tailnet."""

    tags: Annotated[
        list[Annotated[str, Field(max_length=64, pattern=TAG_PATTERN)]],
        Field(
            default_factory=lambda: list(DEFAULT_TAGS),
            min_length=1,
            max_length=16,
            description="ACL tags for the device, each tag:[a-z0-9-]+; the operator's OAuth "
            "client must own them.",
            json_schema_extra={"x-kubernetes-list-type": "set", "default": list(DEFAULT_TAGS)},
        ),
    ]
    hostname: Annotated[
        str | None,
        Field(
            default=None,
            max_length=63,
            pattern=HOSTNAME_PATTERN,
            description="Tailnet hostname; defaults to the server name.",
        ),
    ]


class BillingSpec(_Wire):
    """The Stripe objects this Agent is paid by; set by the Stripe bridge."""

    customer_id: Annotated[
        str | None, Field(default=None, max_length=255, pattern=CUSTOMER_ID_PATTERN)
    ]
    subscription_id: Annotated[
        str | None, Field(default=None, max_length=255, pattern=SUBSCRIPTION_ID_PATTERN)
    ]
    price: Annotated[SubscriptionPrice | None, Field(default=None)]


class AgentSpec(_Wire):
    """Desired state of an Agent."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "oldSelf.desiredState != 'deleted' || self.desiredState == 'deleted'",
                    "message": "spec.desiredState: an Agent that was deleted stays a record; "
                    "create a new Agent instead of reviving it",
                },
                {
                    "rule": "has(self.source) == has(oldSelf.source)",
                    "message": "spec.source is set when the Agent is created, never later",
                },
            ]
        }
    )

    desired_state: Annotated[
        DesiredState,
        Field(default=DesiredState.RUNNING, description="running, stopped, suspended or deleted."),
    ]
    desired_state_reason: Annotated[
        str | None,
        Field(
            default=None,
            max_length=256,
            description="Why desiredState was set, e.g. 'invoice payment failed'; shown in "
            "status while stopped or suspended.",
        ),
    ]
    # The apiserver does not default inside a default, so an omitted section gets the model's
    # fully defaulted form (which also satisfies the sections' CEL rules).
    server: Annotated[
        ServerSpec, Field(default_factory=ServerSpec, json_schema_extra=wire_default(ServerSpec))
    ]
    runtime: Annotated[
        RuntimeSpec,
        Field(default_factory=RuntimeSpec, json_schema_extra=wire_default(RuntimeSpec)),
    ]
    tailscale: Annotated[
        TailscaleSpec,
        Field(default_factory=TailscaleSpec, json_schema_extra=wire_default(TailscaleSpec)),
    ]
    billing: Annotated[BillingSpec | None, Field(default=None)]
    checkpoints: Annotated[CheckpointPolicy | None, Field(default=None)]
    source: Annotated[AgentSource | None, Field(default=None)]
    healing: Annotated[HealingPolicy | None, Field(default=None)]


class AgentStatus(_Wire):
    """Observed state of an Agent, written only by the operator."""

    model_config = ConfigDict(extra="ignore")

    phase: Annotated[Phase | None, Field(default=None)]
    phase_since: Annotated[datetime | None, Field(default=None)]
    message: Annotated[str | None, Field(default=None, max_length=4096)]
    observed_generation: Annotated[int | None, Field(default=None, ge=0)]
    conditions: Annotated[
        list[Condition],
        Field(
            default_factory=list,
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
        ),
    ]
    server: Annotated[ServerStatus | None, Field(default=None)]
    tailscale: Annotated[TailnetStatus | None, Field(default=None)]
    provisioning: Annotated[ProvisioningStatus | None, Field(default=None)]
    healing: Annotated[HealingStatus | None, Field(default=None)]
    shutdown_requested_at: Annotated[
        datetime | None,
        Field(
            default=None,
            description="When the graceful shutdown was sent; the poweroff timeout counts from it.",
        ),
    ]
    deleted_at: Annotated[
        datetime | None,
        Field(default=None, description="When every cloud object of the Agent was removed."),
    ]
    configured_revision: Annotated[
        str | None,
        Field(
            default=None,
            description="Fingerprint of the server and spec.runtime the last successful "
            "configuration applied; a change re-runs the configurator.",
        ),
    ]
    checkpoint_in_progress: Annotated[
        str | None, Field(default=None, description="The AgentCheckpoint holding the Agent.")
    ]
    restore_in_progress: Annotated[
        str | None, Field(default=None, description="The AgentRestore holding the Agent.")
    ]
    checkpoints: Annotated[CheckpointScheduleStatus | None, Field(default=None)]
    cost: Annotated[CostStatus | None, Field(default=None)]


class Agent(BaseModel):
    """A whole Agent object as the apiserver returns it."""

    model_config = ConfigDict(populate_by_name=True, alias_generator=to_camel, extra="ignore")

    api_version: str = API_VERSION
    kind: str = KIND
    metadata: ObjectMeta
    spec: AgentSpec = Field(default_factory=AgentSpec)
    status: AgentStatus = Field(default_factory=AgentStatus)

    def to_wire(self) -> dict[str, Any]:
        """The object as JSON-ready camelCase, without unset optional fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
