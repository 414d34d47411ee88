"""Building blocks every Aura custom resource model shares (Agent, AgentCheckpoint, ...).

Kept apart from `models.py` so that the models of each kind can live in their own module
without importing each other in a circle.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "aura.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

DNS_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
DURATION_PATTERN = r"^([0-9]+(s|m|h|d))+$"
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class Wire(BaseModel):
    """Base for every model that maps a Kubernetes object field: camelCase aliases, no extras."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=False,
    )


def wire_default(model: type[Wire]) -> dict[str, Any]:
    """`{"default": <model with all defaults, as JSON>}`, for a field's `json_schema_extra`."""
    return {"default": model().model_dump(mode="json", by_alias=True, exclude_none=True)}


def parse_duration(text: str) -> float:
    """Seconds in a duration such as `90s`, `30m`, `1h30m` or `7d` (DURATION_PATTERN)."""
    total, number = 0, ""
    for char in text:
        if char.isdigit():
            number += char
        elif char in _DURATION_UNITS and number:
            total += int(number) * _DURATION_UNITS[char]
            number = ""
        else:
            raise ValueError(f"{text!r} is not a duration like 90s, 30m, 1h30m or 7d")
    if number or not text:
        raise ValueError(f"{text!r} is not a duration like 90s, 30m, 1h30m or 7d")
    return float(total)


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(Wire):
    """A Kubernetes-style condition (metav1.Condition)."""

    type: Annotated[str, Field(max_length=316)]
    status: ConditionStatus
    reason: Annotated[str, Field(max_length=1024)]
    message: Annotated[str, Field(default="", max_length=32768)]
    last_transition_time: datetime
    observed_generation: Annotated[int | None, Field(default=None, ge=0)]


CONDITIONS_LIST = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}


class ObjectMeta(BaseModel):
    """The few metadata fields Aura reads; everything else passes through untouched."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, alias_generator=to_camel)

    name: str
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
