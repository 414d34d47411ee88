"""AgentCheckpoint and AgentRestore, and the checkpoint parts of an Agent, as pydantic models.

Like the Agent (`models.py`), these are the single source of the CRDs under `crds/`
(`aura crd --kind ...`). They follow KubeVirt's VirtualMachineSnapshot and
VirtualMachineRestore: a checkpoint is a Hetzner snapshot image of an Agent's server, with a
`deletionPolicy` deciding whether the image outlives the object, a `failureDeadline`, phases
`Pending -> InProgress -> Succeeded | Failed` (and `Deleting`) and `readyToUse`; a restore
rebuilds the Agent's server from a checkpoint's image, after a `targetReadinessPolicy`.
What KubeVirt lacks, a schedule with retention, is `spec.checkpoints` on the Agent.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from aura.wire import (
    API_VERSION,
    CONDITIONS_LIST,
    DNS_NAME_PATTERN,
    DURATION_PATTERN,
    Condition,
    ObjectMeta,
    Wire,
)

CHECKPOINT_KIND = "AgentCheckpoint"
CHECKPOINT_PLURAL = "agentcheckpoints"
CHECKPOINT_SINGULAR = "agentcheckpoint"
RESTORE_KIND = "AgentRestore"
RESTORE_PLURAL = "agentrestores"
RESTORE_SINGULAR = "agentrestore"

# Five cron fields, or one of the @-macros croniter understands; croniter checks the rest.
CRON_PATTERN = r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\S+\s+){4}\S+)$"


def _immutable(field: str, what: str) -> dict[str, JsonValue]:
    return {
        "rule": f"self.{field} == oldSelf.{field}",
        "message": f"spec.{field} is immutable: {what}",
    }


class CheckpointMode(StrEnum):
    """How the disk is captured while the Agent runs."""

    CONSISTENT = "consistent"  # stop the gateway service, snapshot, start it again
    ONLINE = "online"  # snapshot the running server as it is (crash-consistent)


class DeletionPolicy(StrEnum):
    DELETE = "Delete"  # the Hetzner image is deleted with the AgentCheckpoint
    RETAIN = "Retain"  # the image stays (labelled with its Agent) when the object goes


class CheckpointPhase(StrEnum):
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    DELETING = "Deleting"
    ERASED = "Erased"  # a retained final checkpoint whose window ended: the image is gone


class ReadinessPolicy(StrEnum):
    """What a restore does when its Agent is not stopped yet (KubeVirt's names)."""

    WAIT_GRACE_PERIOD = "WaitGracePeriod"  # wait up to gracePeriod for it to stop, else fail
    STOP_TARGET = "StopTarget"  # power the server off itself
    FAIL_IMMEDIATE = "FailImmediate"  # fail at once


class RestorePhase(StrEnum):
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


AgentName = Annotated[
    str, Field(max_length=253, pattern=DNS_NAME_PATTERN, description="An Agent in this namespace.")
]
Duration = Annotated[str, Field(max_length=32, pattern=DURATION_PATTERN)]


class AgentCheckpointSpec(Wire):
    """What to checkpoint and how."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _immutable("agentName", "create a new AgentCheckpoint for another Agent"),
                _immutable("mode", "create a new AgentCheckpoint to change it"),
            ]
        }
    )

    agent_name: AgentName
    mode: Annotated[
        CheckpointMode,
        Field(
            default=CheckpointMode.CONSISTENT,
            description="consistent (default): stop the gateway service for the snapshot and "
            "start it again; online: snapshot the running server as it is.",
        ),
    ]
    deletion_policy: Annotated[
        DeletionPolicy,
        Field(
            default=DeletionPolicy.DELETE,
            description="Delete (default): the Hetzner image goes with this object; Retain: "
            "the image stays, labelled with its Agent's namespace and name.",
        ),
    ]
    failure_deadline: Annotated[
        Duration | None,
        Field(
            default=None,
            description="Give up (phase Failed, partial image deleted) after this long, e.g. "
            "30m; defaults to the operator's --checkpoint-deadline.",
        ),
    ]


class CheckpointError(Wire):
    time: datetime
    message: Annotated[str, Field(max_length=4096)]


class CheckpointErasure(Wire):
    """The erasure record of a retained final checkpoint (`checkpoints/erasure.py`)."""

    time: datetime
    image_id: Annotated[int | None, Field(default=None, alias="imageID")]
    rule: Annotated[str, Field(max_length=512)]


class CheckpointSource(Wire):
    """What the Agent's server ran when the checkpoint was taken."""

    agent_uid: Annotated[str | None, Field(default=None, alias="agentUID")]
    server_id: Annotated[int | None, Field(default=None, alias="serverID")]
    server_type: Annotated[str | None, Field(default=None)]
    location: Annotated[str | None, Field(default=None)]
    openclaw_version: Annotated[str | None, Field(default=None)]
    spec_generation: Annotated[int | None, Field(default=None)]
    powered_off: Annotated[
        bool | None, Field(default=None, description="The server was off (not started for it).")
    ]


class AgentCheckpointStatus(Wire):
    """Observed state of a checkpoint, written only by the operator."""

    model_config = ConfigDict(extra="ignore")

    phase: Annotated[CheckpointPhase | None, Field(default=None)]
    ready_to_use: Annotated[bool | None, Field(default=None)]
    image_id: Annotated[
        int | None, Field(default=None, alias="imageID", description="The Hetzner image ID.")
    ]
    size_gb: Annotated[
        float | None,
        Field(
            default=None,
            alias="sizeGB",
            description="image_size: the data stored (billed per GB-month).",
        ),
    ]
    disk_size_gb: Annotated[
        int | None,
        Field(
            default=None, alias="diskSizeGB", description="Disk of the source server: the minimum."
        ),
    ]
    started_at: Annotated[datetime | None, Field(default=None)]
    taken_at: Annotated[datetime | None, Field(default=None)]
    source: Annotated[CheckpointSource | None, Field(default=None)]
    indications: Annotated[
        list[str],
        Field(
            default_factory=list,
            description="GatewayQuiesced, Online or PoweredOff: how consistent the data is.",
        ),
    ]
    gateway_stopped: Annotated[
        bool | None,
        Field(default=None, description="The operator stopped the gateway and must restart it."),
    ]
    error: Annotated[CheckpointError | None, Field(default=None)]
    erasure: Annotated[
        CheckpointErasure | None,
        Field(default=None, description="What was erased, when and by which rule."),
    ]
    observed_generation: Annotated[int | None, Field(default=None, ge=0)]
    conditions: Annotated[
        list[Condition], Field(default_factory=list, json_schema_extra=CONDITIONS_LIST)
    ]


class AgentRestoreSpec(Wire):
    """Which checkpoint to put back onto which Agent's server."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self == oldSelf", "message": "spec is immutable: create a new restore"}
            ]
        }
    )

    agent_name: AgentName
    checkpoint_name: Annotated[
        str,
        Field(max_length=253, pattern=DNS_NAME_PATTERN, description="A checkpoint of the Agent."),
    ]
    target_readiness_policy: Annotated[
        ReadinessPolicy,
        Field(
            default=ReadinessPolicy.WAIT_GRACE_PERIOD,
            description="If the Agent is not stopped: WaitGracePeriod (default), StopTarget "
            "or FailImmediate.",
        ),
    ]
    grace_period: Annotated[
        Duration,
        Field(default="5m", description="How long WaitGracePeriod waits for the Agent to stop."),
    ]


class AgentRestoreStatus(Wire):
    model_config = ConfigDict(extra="ignore")

    phase: Annotated[RestorePhase | None, Field(default=None)]
    complete: Annotated[bool | None, Field(default=None)]
    image_id: Annotated[int | None, Field(default=None, alias="imageID")]
    started_at: Annotated[datetime | None, Field(default=None)]
    rebuild_action_id: Annotated[int | None, Field(default=None, alias="rebuildActionID")]
    restore_time: Annotated[datetime | None, Field(default=None)]
    stopped_by_restore: Annotated[bool | None, Field(default=None)]
    error: Annotated[CheckpointError | None, Field(default=None)]
    observed_generation: Annotated[int | None, Field(default=None, ge=0)]
    conditions: Annotated[
        list[Condition], Field(default_factory=list, json_schema_extra=CONDITIONS_LIST)
    ]


class CheckpointPolicy(Wire):
    """`spec.checkpoints` of an Agent: scheduled checkpoints and their retention."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.keep) || has(self.keepFor)",
                    "message": "spec.checkpoints needs keep and/or keepFor, or the images "
                    "would pile up (and be billed) forever",
                }
            ]
        }
    )

    schedule: Annotated[
        str,
        Field(
            max_length=128,
            pattern=CRON_PATTERN,
            description="Cron schedule in UTC, e.g. '0 3 * * *' or @daily; each Agent's "
            "checkpoint starts at a stable offset within --checkpoint-jitter after it.",
        ),
    ]
    keep: Annotated[
        int | None, Field(default=None, ge=1, le=100, description="Keep the newest N ready.")
    ]
    keep_for: Annotated[
        Duration | None, Field(default=None, description="Delete ready ones older, e.g. 7d.")
    ]
    mode: Annotated[CheckpointMode, Field(default=CheckpointMode.CONSISTENT)]
    deletion_policy: Annotated[DeletionPolicy, Field(default=DeletionPolicy.DELETE)]

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        if not croniter.is_valid(value):
            raise ValueError(f"spec.checkpoints.schedule: {value!r} is not a cron expression")
        return value


class AgentSource(Wire):
    """`spec.source`: create the Agent's server from a checkpoint of another Agent."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self == oldSelf", "message": "spec.source is immutable"}
            ]
        }
    )

    checkpoint: Annotated[
        str,
        Field(
            max_length=253,
            pattern=DNS_NAME_PATTERN,
            description="An AgentCheckpoint in this namespace, readyToUse; the server type's "
            "disk must be at least the checkpoint's diskSizeGB.",
        ),
    ]


class CheckpointScheduleStatus(Wire):
    """`status.checkpoints` of an Agent with a schedule."""

    last_checkpoint: Annotated[str | None, Field(default=None)]
    last_checkpoint_time: Annotated[datetime | None, Field(default=None)]
    next_checkpoint_time: Annotated[datetime | None, Field(default=None)]


class AgentCheckpoint(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    api_version: Annotated[str, Field(default=API_VERSION, alias="apiVersion")]
    kind: str = CHECKPOINT_KIND
    metadata: ObjectMeta
    spec: AgentCheckpointSpec
    status: AgentCheckpointStatus = Field(default_factory=AgentCheckpointStatus)


class AgentRestore(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    api_version: Annotated[str, Field(default=API_VERSION, alias="apiVersion")]
    kind: str = RESTORE_KIND
    metadata: ObjectMeta
    spec: AgentRestoreSpec
    status: AgentRestoreStatus = Field(default_factory=AgentRestoreStatus)


def dump(model: Wire) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)
