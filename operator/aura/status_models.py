"""What the operator observes of an Agent's server, tailnet device and provisioning attempt:
the parts of `AgentStatus` (models.py) that describe one thing each."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from aura.wire import Wire as _Wire


class ServerStatus(_Wire):
    """The Hetzner server backing an Agent, as last observed."""

    id: Annotated[int | None, Field(default=None)]
    name: Annotated[str | None, Field(default=None)]
    status: Annotated[str | None, Field(default=None, description="Hetzner server status.")]
    type: Annotated[str | None, Field(default=None)]
    location: Annotated[str | None, Field(default=None)]
    ipv4: Annotated[str | None, Field(default=None)]
    ipv6: Annotated[str | None, Field(default=None)]


class TailnetStatus(_Wire):
    """The tailnet device of an Agent, as last observed."""

    device_id: Annotated[str | None, Field(default=None)]
    hostname: Annotated[str | None, Field(default=None)]
    ipv4: Annotated[str | None, Field(default=None)]
    ipv6: Annotated[str | None, Field(default=None)]
    online: Annotated[bool | None, Field(default=None)]


class ProvisioningStatus(_Wire):
    """The current provisioning attempt: its deadline, step timeouts, retry budget, failure."""

    attempt: Annotated[int, Field(default=0, ge=0)]
    started_at: Annotated[
        datetime | None,
        Field(default=None, description="When the attempt began; the deadline counts from it."),
    ]
    step: Annotated[
        str | None,
        Field(
            default=None,
            description="The step the attempt is waiting in (server, boot, configure, tailnet, "
            "health).",
        ),
    ]
    since: Annotated[
        datetime | None,
        Field(default=None, description="When the attempt began waiting in `step`."),
    ]
    failed_step: Annotated[str | None, Field(default=None)]
    failures: Annotated[
        int,
        Field(
            default=0,
            ge=0,
            description="Consecutive failures of "
            "failedStep; past the retry budget the attempt rolls back.",
        ),
    ]
    failed_generation: Annotated[
        int | None,
        Field(
            default=None,
            description="Generation whose attempt failed and was rolled back; "
            "a new generation starts a new attempt.",
        ),
    ]
    retry_token: Annotated[
        str | None,
        Field(
            default=None,
            description="Value of the aura.dev/retry annotation when the attempt "
            "failed; changing the annotation starts a new attempt.",
        ),
    ]
    rolled_back_at: Annotated[
        datetime | None,
        Field(
            default=None,
            description="When the rollback of the failed attempt finished deleting its cloud "
            "objects.",
        ),
    ]
    consecutive_failures: Annotated[
        int,
        Field(
            default=0,
            ge=0,
            description="Attempts in a row that failed for a transient cause; sets the "
            "back-off before the next one. A success (or a spec/annotation change) resets it.",
        ),
    ]
    next_attempt_at: Annotated[
        datetime | None,
        Field(
            default=None,
            description="When the operator starts the next attempt by itself (transient "
            "failures only; unset after a permanent one).",
        ),
    ]
