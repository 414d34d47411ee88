"""The managedFields trim wraps kopf's one watch-stream source, and strips only that field."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kopf._cogs.clients import watching
from kopf._core.reactor import queueing

from aura.controller import watch_trim


def _event() -> dict[str, Any]:
    return {
        "type": "MODIFIED",
        "object": {
            "metadata": {
                "name": "a",
                "annotations": {"x": "1"},
                "managedFields": [{"manager": "kopf", "fieldsV1": {"f:status": {}}}],
            },
            "spec": {"desiredState": "running"},
            "status": {"phase": "Running"},
        },
    }


def test_kopf_queueing_reads_the_watch_source_through_its_module() -> None:
    """The hook works only while kopf's queueing looks `infinite_watch` up on the module at
    call time; a kopf upgrade that changes that must fail here, not silently cost memory."""
    source = inspect.getsource(queueing.watcher)
    assert "watching.infinite_watch(" in source


def test_strip_keeps_everything_but_managed_fields() -> None:
    event = watch_trim.strip_managed_fields(_event())
    assert "managedFields" not in event["object"]["metadata"]
    assert event["object"]["metadata"]["annotations"] == {"x": "1"}
    assert event["object"]["spec"] == {"desiredState": "running"}
    assert event["object"]["status"] == {"phase": "Running"}
    assert watch_trim.strip_managed_fields(watching.Bookmark.LISTED) is watching.Bookmark.LISTED


def test_install_wraps_once_and_strips_every_event(monkeypatch: pytest.MonkeyPatch) -> None:
    seen_kwargs: list[dict[str, Any]] = []

    async def source(**kwargs: Any) -> AsyncIterator[Any]:
        seen_kwargs.append(kwargs)
        yield watching.Bookmark.LISTED
        yield _event()
        yield _event()

    monkeypatch.setattr(watching, "infinite_watch", source)
    watch_trim.install()
    wrapped = watching.infinite_watch
    watch_trim.install()  # idempotent: no wrapper around the wrapper
    assert watching.infinite_watch is wrapped
    assert wrapped is not source

    async def collect() -> list[Any]:
        return [e async for e in watching.infinite_watch(resource="r", namespace="ns")]

    events = asyncio.run(collect())
    assert seen_kwargs == [{"resource": "r", "namespace": "ns"}]
    assert events[0] is watching.Bookmark.LISTED
    assert len(events) == 3
    assert all("managedFields" not in e["object"]["metadata"] for e in events[1:])
