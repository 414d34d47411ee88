"""Drop `metadata.managedFields` from every object kopf receives, before kopf keeps it.

Why: kopf keeps the latest body of every object that has a timer (its daemons' "live fresh
body"), so the operator holds one whole Agent per Agent, and `managedFields` is the biggest
part of it after a few status writes (server-side apply's record of who owns which field,
about as large as the fields themselves; `hack/bench/reconcile.py` prints the sizes). Nothing
in Aura or kopf reads it: kopf writes with JSON merge patches, which leave the apiserver's
record untouched. controller-runtime offers exactly this as `TransformStripManagedFields`;
kopf has no transform hook, so this wraps the one function every kopf watch stream comes
from (`kopf._cogs.clients.watching.infinite_watch`, looked up through its module by kopf's
queueing at call time). `tests/unit/test_watch_trim.py` fails if a kopf upgrade moves it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from kopf._cogs.clients import watching

_WRAPPED = "_aura_strips_managed_fields"


def drop_managed_fields(obj: Any) -> None:
    """Remove `metadata.managedFields` from a Kubernetes object (a dict), in place."""
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)


def strip_managed_fields(event: Any) -> Any:
    """The same watch event without `object.metadata.managedFields` (in place); bookmarks
    and anything without an object pass as they are."""
    if isinstance(event, dict):
        drop_managed_fields(event.get("object"))
    return event


def install() -> None:
    """Make every kopf watch stream strip `managedFields`. Idempotent."""
    original: Callable[..., AsyncIterator[Any]] = watching.infinite_watch
    if getattr(original, _WRAPPED, False):
        return

    async def infinite_watch(**kwargs: Any) -> AsyncIterator[Any]:
        async for event in original(**kwargs):
            yield strip_managed_fields(event)

    setattr(infinite_watch, _WRAPPED, True)
    setattr(watching, "infinite_watch", infinite_watch)  # noqa: B010 (a module attribute)
