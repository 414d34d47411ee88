"""The hibernation part of the Agent schema: `spec.lifecycle` (policy), `status.hibernation`
(memory of a hibernation in progress or done) and `status.serverSource` (the checkpoint image
the next server is created from: a wake, or a replacement that keeps the data).

Kept beside `models.py` (which embeds them) so the Agent module stays readable.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from aura.wire import DURATION_PATTERN
from aura.wire import Wire as _Wire


class TailnetOnHibernate(StrEnum):
    """What becomes of the Agent's tailnet device while it hibernates."""

    REMOVE = "remove"  # deleted with the server; the woken server joins with a fresh key
    KEEP = "keep"  # left in the tailnet (offline); the woken server keeps the image's node


class HibernationState(StrEnum):
    HIBERNATING = "Hibernating"  # checkpoint being taken; the server still exists
    HIBERNATED = "Hibernated"  # the server is deleted; the data is in the checkpoint
    WAKING = "Waking"  # a server is being created from the checkpoint


class HibernationCause(StrEnum):
    REQUESTED = "requested"  # desiredState: hibernated
    AUTOMATIC = "automatic"  # stopped or suspended for hibernateAfter
    BUDGET = "budget"  # held by an AgentBudget's Hibernate threshold (BUDGET_HOLD)


BUDGET_HOLD = "aura.dev/hibernated-by-budget"
"""Annotation on an Agent: the AgentBudget (its name, same namespace) that holds it hibernated.
Written and removed by the cost job (aura/cost/hibernation.py), read by the reconcile."""
BUDGET_HOLD_RATE = "aura.dev/hibernated-hourly-rate"
"""Annotation beside BUDGET_HOLD: the Agent's hourly rate when it was held (what it would cost
again awake), so the budget can tell when waking it would not cross the threshold again."""


class LifecyclePolicy(_Wire):
    """`spec.lifecycle`: hibernation of this Agent."""

    hibernate_after: Annotated[
        str | None,
        Field(
            default=None,
            max_length=32,
            pattern=DURATION_PATTERN,
            description="Hibernate an Agent that has been stopped or suspended this long, e.g. "
            "7d (desiredState is left as it is); overrides the operator's --hibernate-after.",
        ),
    ]
    tailnet_on_hibernate: Annotated[
        TailnetOnHibernate,
        Field(
            default=TailnetOnHibernate.REMOVE,
            description="remove (default): delete the tailnet device with the server, join "
            "with a fresh single-use key on wake; keep: leave the device in the tailnet.",
        ),
    ]


class HibernationStatus(_Wire):
    """`status.hibernation`: the checkpoint the Agent sleeps in, and since when."""

    state: HibernationState
    cause: Annotated[HibernationCause, Field(default=HibernationCause.REQUESTED)]
    checkpoint: Annotated[
        str, Field(max_length=253, description="The AgentCheckpoint holding the data.")
    ]
    started_at: Annotated[
        datetime, Field(description="When hibernating began (recorded before any action).")
    ]
    image_id: Annotated[int | None, Field(default=None, alias="imageID")]
    size_gb: Annotated[float | None, Field(default=None, alias="sizeGB")]
    server_id: Annotated[
        int | None, Field(default=None, alias="serverID", description="The server it replaced.")
    ]
    server_delete_at: Annotated[
        datetime | None,
        Field(default=None, description="When the server's deletion was decided (data ready)."),
    ]
    since: Annotated[
        datetime | None, Field(default=None, description="When the server was deleted.")
    ]
    monthly_saving: Annotated[
        float | None,
        Field(
            default=None,
            description="Server (and its IPv4) per month minus the snapshot's storage per month, "
            "net, from Hetzner's price list.",
        ),
    ]
    currency: Annotated[str | None, Field(default=None, max_length=3)]
    wake_started_at: Annotated[datetime | None, Field(default=None)]
    failed_at: Annotated[
        datetime | None,
        Field(default=None, description="When the checkpoint failed; retried after a back-off."),
    ]
    failure: Annotated[str | None, Field(default=None, max_length=1024)]
    attempts: Annotated[int, Field(default=1, ge=1)]


class ServerSource(_Wire):
    """`status.serverSource`: the next server is created from this checkpoint's image."""

    checkpoint: Annotated[str, Field(max_length=253)]
    image_id: Annotated[int, Field(alias="imageID")]
    taken_at: Annotated[datetime | None, Field(default=None)]
    purpose: Annotated[str, Field(max_length=16, description="wake or replacement.")]
