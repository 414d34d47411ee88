"""AgentImage: golden images of the agent runtime, as pydantic models (the source of
`crds/aura.dev_agentimages.yaml`, `aura crd --kind agentimage`).

An AgentImage is a line of golden images for one base image in one namespace. Its
`spec.openclawVersion` names the runtime version to have an image of: the operator builds one
by provisioning a *builder Agent* (an ordinary Agent owned by the AgentImage, so the build
passes exactly the health check every Agent passes), snapshots its server and deletes it. Each
build that succeeded is a record in `status.images`; new Agents of the namespace whose runtime
version, base image and CPU architecture match a record boot from it, so only their own
configuration is left to do. Changing `spec.openclawVersion` builds a new image; records
beyond `spec.keep` that no server uses any more are pruned with their Hetzner image.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from aura.models import IMAGE_PATTERN, LOCATION_PATTERN, SERVER_TYPE_PATTERN, VERSION_PATTERN
from aura.wire import API_VERSION, CONDITIONS_LIST, Condition, ObjectMeta, Wire, wire_default

IMAGE_KIND = "AgentImage"
IMAGE_PLURAL = "agentimages"
IMAGE_SINGULAR = "agentimage"


class ImagePhase(StrEnum):
    BUILDING = "Building"  # a build of spec.openclawVersion is under way
    READY = "Ready"  # spec.openclawVersion has an image Agents boot from
    FAILED = "Failed"  # every attempt of the current build failed; older images still serve


class BuilderSpec(Wire):
    """The server a build runs on. Its disk is the image's minimum: build on the smallest type
    of an architecture and the image fits every type of it."""

    type: Annotated[
        str,
        Field(
            default="cx22",
            max_length=16,
            pattern=SERVER_TYPE_PATTERN,
            description="Hetzner server type of the builder (cax* builds an arm64 image).",
        ),
    ]
    location: Annotated[
        str,
        Field(default="nbg1", max_length=8, pattern=LOCATION_PATTERN, description="Location."),
    ]


class AgentImageSpec(Wire):
    """Which runtime version to keep a golden image of, and how many older ones to keep."""

    openclaw_version: Annotated[
        str,
        Field(
            max_length=64,
            pattern=VERSION_PATTERN,
            description="The OpenClaw release to build an image of, e.g. 2026.3.1. Agents with "
            "this spec.runtime.openclawVersion boot from it once it is Ready.",
        ),
    ]
    base_image: Annotated[
        str,
        Field(
            default="ubuntu-24.04",
            max_length=63,
            pattern=IMAGE_PATTERN,
            description="The Hetzner system image the build starts from; only Agents whose "
            "spec.server.image is this one use the golden image.",
        ),
    ]
    builder: Annotated[
        BuilderSpec,
        Field(default_factory=BuilderSpec, json_schema_extra=wire_default(BuilderSpec)),
    ]
    keep: Annotated[
        int,
        Field(
            default=2,
            ge=1,
            le=20,
            description="Images kept, newest first; older ones are deleted once no server "
            "created from them exists any more.",
        ),
    ]
    max_attempts: Annotated[
        int,
        Field(
            default=2,
            ge=1,
            le=10,
            description="Builds tried for one version before the phase is Failed (change "
            "spec.openclawVersion or delete and recreate the AgentImage to try again).",
        ),
    ]


class ImageRecord(Wire):
    """One golden image that passed its build."""

    openclaw_version: str
    image_id: Annotated[int, Field(alias="imageID")]
    base_image: str
    architecture: Annotated[str, Field(description="x86 or arm.")]
    size_gb: Annotated[float | None, Field(default=None, alias="sizeGB")]
    disk_size_gb: Annotated[int | None, Field(default=None, alias="diskSizeGB")]
    built_at: datetime
    build_seconds: Annotated[
        float | None, Field(default=None, description="From the build's start to Ready.")
    ]


class BuildStatus(Wire):
    """The build under way; written before each action it guards."""

    openclaw_version: str
    attempt: Annotated[int, Field(ge=1)]
    builder_agent: Annotated[str, Field(description="Name of the builder Agent.")]
    started_at: datetime
    builder_server_id: Annotated[int | None, Field(default=None, alias="builderServerID")]
    image_id: Annotated[int | None, Field(default=None, alias="imageID")]


class AgentImageStatus(Wire):
    model_config = ConfigDict(extra="ignore")

    phase: Annotated[ImagePhase | None, Field(default=None)]
    current_image_id: Annotated[
        int | None,
        Field(default=None, alias="currentImageID", description="Image of spec.openclawVersion."),
    ]
    images: Annotated[list[ImageRecord], Field(default_factory=list)]
    build: Annotated[BuildStatus | None, Field(default=None)]
    failed_attempts: Annotated[int, Field(default=0, ge=0)]
    message: Annotated[str | None, Field(default=None, max_length=1024)]
    observed_generation: Annotated[int | None, Field(default=None, ge=0)]
    conditions: Annotated[
        list[Condition], Field(default_factory=list, json_schema_extra=CONDITIONS_LIST)
    ]


class AgentImage(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    api_version: Annotated[str, Field(default=API_VERSION, alias="apiVersion")]
    kind: str = IMAGE_KIND
    metadata: ObjectMeta
    spec: AgentImageSpec
    status: AgentImageStatus = Field(default_factory=AgentImageStatus)


def dump(model: Wire) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)
