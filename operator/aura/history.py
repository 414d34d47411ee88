"""An Agent's history: its Kubernetes Events, read and put in the order they happened.

Every view of the history (`aura status --events`, the bridge's status API, `aura demo`) goes
through `read_events` and `ordered`, so they agree.

Contract of the order: oldest first, by the time an Event last happened, which is
`series.lastObservedTime` for a repeated Event, else `eventTime` (microseconds: the operator
posts through `events.k8s.io/v1`, so Events of the same second keep their order), else the
second-resolution `lastTimestamp` / `firstTimestamp` of core/v1 Events posted by other
components, else `metadata.creationTimestamp`. Equal times fall back to the resourceVersion,
which etcd assigns in write order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client

from aura.models import KIND

# Both shapes: events.k8s.io/v1 (`deprecated*`, `note`, `regarding`) and core/v1.
_TIME_KEYS = (
    "eventTime",
    "deprecatedLastTimestamp",
    "lastTimestamp",
    "deprecatedFirstTimestamp",
    "firstTimestamp",
)
_EPOCH = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Entry:
    """One Event as the views show it."""

    time: datetime | None
    type: str
    reason: str
    message: str
    reporter: str


def parse_time(value: Any) -> datetime | None:
    """A timestamp from the API (an ISO 8601 string or a datetime) as an aware datetime."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


def happened_at(event: dict[str, Any]) -> datetime | None:
    """When `event` (last) happened, by the precedence in the module docstring."""
    series = event.get("series") or {}
    for value in (series.get("lastObservedTime"), *(event.get(k) for k in _TIME_KEYS)):
        if parsed := parse_time(value):
            return parsed
    return parse_time((event.get("metadata") or {}).get("creationTimestamp"))


def _sort_key(event: dict[str, Any]) -> tuple[datetime, int]:
    version = str((event.get("metadata") or {}).get("resourceVersion", ""))
    return happened_at(event) or _EPOCH, int(version) if version.isdigit() else 0


def ordered(events: Iterable[dict[str, Any]]) -> list[Entry]:
    """`events` (dicts in either API's shape) as entries, oldest first."""
    return [
        Entry(
            time=happened_at(e),
            type=e.get("type") or "",
            reason=e.get("reason") or "",
            message=e.get("note") or e.get("message") or "",
            reporter=e.get("reportingController")
            or e.get("reportingComponent")
            or (e.get("deprecatedSource") or e.get("source") or {}).get("component")
            or "",
        )
        for e in sorted(events, key=_sort_key)
    ]


def regarding(event: dict[str, Any]) -> tuple[str, str]:
    """(namespace, name) of the object the Event is about."""
    obj = event.get("regarding") or event.get("involvedObject") or {}
    return str(obj.get("namespace", "")), str(obj.get("name", ""))


async def read_events(
    api: client.ApiClient,
    namespace: str | None,
    name: str | None = None,
    *,
    request_timeout: float | None = None,
) -> list[dict[str, Any]]:
    """Every Event about Agents (or about Agent `name`) in `namespace`, or in all namespaces,
    as events.k8s.io/v1 dicts in the apiserver's order (pass them through `ordered`)."""
    events = client.EventsV1Api(api)
    selector = f"regarding.kind={KIND}" + (f",regarding.name={name}" if name else "")
    # Raw JSON: the client's model refuses an events.k8s.io Event without `eventTime`, which
    # is what a core/v1 Event posted by another component looks like through this API.
    extra: dict[str, Any] = {"_preload_content": False}
    if request_timeout:
        extra["_request_timeout"] = request_timeout
    if namespace:
        response = await events.list_namespaced_event(namespace, field_selector=selector, **extra)
    else:
        response = await events.list_event_for_all_namespaces(field_selector=selector, **extra)
    listed = json.loads(await response.read())  # type: ignore[attr-defined]  # raw response
    items: list[dict[str, Any]] = listed.get("items") or []
    return items
