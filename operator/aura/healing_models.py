"""The self-healing part of the Agent schema: `spec.healing` (policy), `status.healing` (memory).

Kept beside `models.py` (which embeds them) so the Agent module stays readable.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from aura.wire import Wire as _Wire


class Rung(StrEnum):
    """The repair ladder, in order: each rung acts only after the previous one did not help."""

    RESTART = "restart"  # restart the gateway service over the configurator's connection
    REBOOT = "reboot"  # reboot the server (Hetzner reboot action)
    REPLACE = "replace"  # a new server, from the newest ready checkpoint (blank if none)


RUNGS = (Rung.RESTART, Rung.REBOOT, Rung.REPLACE)


class HealingPolicy(_Wire):
    """How far the operator may go to repair this Agent when its gateway is unhealthy."""

    enabled: Annotated[
        bool, Field(default=True, description="false: never repair (only report Degraded).")
    ]
    max_rung: Annotated[
        Rung,
        Field(
            default=Rung.REPLACE,
            description="The last rung the ladder may climb: restart, reboot or replace.",
        ),
    ]


class RepairRecord(_Wire):
    """One repair the operator made."""

    rung: Rung
    at: datetime
    result: Annotated[str, Field(max_length=512)]


class HealingStatus(_Wire):
    """The repair ladder's memory (explicit fields with timestamps)."""

    unhealthy_since: Annotated[
        datetime | None,
        Field(default=None, description="When the current unhealthy episode began."),
    ]
    rung: Annotated[
        Rung | None, Field(default=None, description="The last rung acted in this episode.")
    ]
    rung_at: Annotated[datetime | None, Field(default=None, description="When that rung acted.")]
    last_repair_at: Annotated[
        datetime | None,
        Field(default=None, description="The Agent's last repair; the cooldown counts from it."),
    ]
    repairs: Annotated[
        list[RepairRecord],
        Field(default_factory=list, max_length=10, description="The last repairs, newest last."),
    ]
