"""AgentPool: a warm pool of pre-booted agent servers, as pydantic models (the source of
`crds/aura.dev_agentpools.yaml`, `aura crd --kind agentpool`).

A pool keeps between `min` and `max` servers of one type and location booted from the current
golden image of an AgentImage (image_models.py), enrolled in the tailnet under the pool's tags,
with the gateway installed and configured with a pool-owned token but no customer Secret. A
new Agent of the namespace whose server type, location, base image and runtime version match
takes one instead of creating a server (controller/pool/bind.py); the pool refills. A pooled
server serves one customer only: after it was taken it is the Agent's, and deleted with it.
The pool costs money while idle, so the namespace's AgentBudget caps it (`status.capped`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from aura.models import LOCATION_PATTERN, SERVER_TYPE_PATTERN
from aura.wire import API_VERSION, CONDITIONS_LIST, DNS_NAME_PATTERN, Condition, ObjectMeta, Wire

POOL_KIND = "AgentPool"
POOL_PLURAL = "agentpools"
POOL_SINGULAR = "agentpool"
TAG_PATTERN = r"^tag:[a-zA-Z][a-zA-Z0-9-]*$"


class AgentPoolSpec(Wire):
    """How many warm servers to keep, of which type, where, from which AgentImage."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self.min <= self.max", "message": "spec.min must not exceed spec.max"}
            ]
        }
    )

    image: Annotated[
        str,
        Field(
            max_length=253,
            pattern=DNS_NAME_PATTERN,
            description="Name of the AgentImage (same namespace) whose current image the "
            "pooled servers boot from; the pool waits while it is not Ready.",
        ),
    ]
    server_type: Annotated[
        str,
        Field(default="cx22", max_length=16, pattern=SERVER_TYPE_PATTERN, description="Type."),
    ]
    location: Annotated[
        str,
        Field(default="nbg1", max_length=8, pattern=LOCATION_PATTERN, description="Location."),
    ]
    min: Annotated[int, Field(default=1, ge=0, le=100, description="Warm servers to keep.")]
    max: Annotated[
        int,
        Field(
            default=5,
            ge=0,
            le=100,
            description="Servers the pool may hold at once, warm and booting.",
        ),
    ]
    tags: Annotated[
        list[Annotated[str, Field(max_length=64, pattern=TAG_PATTERN)]],
        Field(
            default_factory=lambda: ["tag:aura-pool"],
            min_length=1,
            max_length=8,
            description="Tailnet tags of a pooled server; replaced by the Agent's on bind.",
        ),
    ]


class AgentPoolStatus(Wire):
    model_config = ConfigDict(extra="ignore")

    ready: Annotated[int, Field(default=0, description="Warm servers an Agent can take now.")]
    booting: Annotated[int, Field(default=0, description="Members still provisioning.")]
    target: Annotated[
        int, Field(default=0, description="Members wanted: spec.min, capped by max and budget.")
    ]
    served: Annotated[int, Field(default=0, description="Servers handed to Agents so far.")]
    image_id: Annotated[int | None, Field(default=None, alias="imageID")]
    openclaw_version: Annotated[str | None, Field(default=None)]
    cost_per_month: Annotated[
        float | None,
        Field(default=None, description="What the members cost per month (net, Hetzner prices)."),
    ]
    currency: Annotated[str | None, Field(default=None)]
    capped: Annotated[
        bool, Field(default=False, description="The namespace's AgentBudget holds the pool back.")
    ]
    message: Annotated[str | None, Field(default=None, max_length=1024)]
    last_refill: Annotated[datetime | None, Field(default=None)]
    observed_generation: Annotated[int | None, Field(default=None, ge=0)]
    conditions: Annotated[
        list[Condition], Field(default_factory=list, json_schema_extra=CONDITIONS_LIST)
    ]


class AgentPool(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    api_version: Annotated[str, Field(default=API_VERSION, alias="apiVersion")]
    kind: str = POOL_KIND
    metadata: ObjectMeta
    spec: AgentPoolSpec
    status: AgentPoolStatus = Field(default_factory=AgentPoolStatus)


def dump(model: Wire) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)
