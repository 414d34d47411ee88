"""The shared server cache, the error-to-kopf mapping and the orphan sweeper, on fakes."""

from __future__ import annotations

import asyncio
import logging

import kopf
import pytest

from aura.controller import errors, naming
from aura.controller.clients.kube import AgentRef
from aura.controller.clients.servercache import ServerCache
from aura.controller.logfilter import KopfNoise
from aura.controller.outcomes import Wait
from aura.controller.reconcile.sweeper import Sweeper
from aura.controller.settings import OperatorConfig
from tests.fakes.hetzner import FakeHetzner
from tests.fakes.operator import fake_operator
from tests.fakes.tailnet import FakeTailnet


async def _create(h: FakeHetzner, ref: AgentRef) -> int:
    server = await h.create_server(
        name=naming.server_name(ref), server_type="cx22", location="nbg1", image="i",
        labels=naming.server_labels(ref), user_data="",
    )  # fmt: skip
    return server.id


async def test_cache_serves_many_readers_from_one_list_call() -> None:
    h = FakeHetzner()
    ids = [await _create(h, AgentRef("ns", f"a{i}", f"u{i}")) for i in range(5)]
    cache = ServerCache(h, label_selector=naming.MANAGED_SELECTOR, max_age=60)
    found = await asyncio.gather(*(cache.get(i) for i in ids))
    assert [s.id for s in found if s] == ids
    assert h.calls["list_servers"] == 1


async def test_remembered_server_survives_a_list_that_started_before_it() -> None:
    h = FakeHetzner()
    now = [0.0]
    cache = ServerCache(h, label_selector=naming.MANAGED_SELECTOR, max_age=0, clock=lambda: now[0])
    created: list[int] = []
    list_servers = h.list_servers

    async def list_racing_a_create(label_selector: str) -> list[object]:
        # The list is computed, then a create finishes and is remembered before it returns.
        result = await list_servers(label_selector)
        now[0] = 5.0
        created.append(await _create(h, AgentRef("ns", "a", "u")))
        cache.remember(h.servers[created[0]])
        return result  # type: ignore[return-value]

    h.list_servers = list_racing_a_create  # type: ignore[method-assign]
    await cache.all()
    assert await cache.get(created[0], max_age=60) is not None


@pytest.mark.parametrize(
    ("error", "kind", "delay"),
    [
        (errors.Retryable("x"), kopf.TemporaryError, 5.0),
        (errors.RateLimited("x", retry_after=9), kopf.TemporaryError, 9.0),
        (errors.InvalidCredentials("x", source="HCLOUD_TOKEN"), kopf.TemporaryError, 300.0),
        (errors.InvalidRequest("x", reason="InvalidInput"), kopf.PermanentError, None),
        (errors.StepFailed("boot", "x", reason="ServerNeverBooted"), kopf.PermanentError, None),
        (Wait(2.5, "server starting"), kopf.TemporaryError, 2.5),
    ],
)
def test_to_kopf_is_the_single_mapping(
    error: errors.AuraError | Wait, kind: type[Exception], delay: float | None
) -> None:
    mapped = errors.to_kopf(error, credentials_delay=300, default_delay=5)
    assert isinstance(mapped, kind)
    if delay is not None:
        assert isinstance(mapped, kopf.TemporaryError) and mapped.delay == delay


def test_the_log_filter_silences_exactly_the_waits() -> None:
    wait = errors.to_kopf(Wait(1, "server starting"), credentials_delay=1, default_delay=1)
    failure = errors.to_kopf(errors.Retryable("boom"), credentials_delay=1, default_delay=1)

    def logged(exc: Exception, level: int) -> logging.LogRecord | None:
        # kopf's own wording for a handler that raised a TemporaryError
        text = f"Handler 'reconcile' failed temporarily: {exc}"
        record = logging.LogRecord("kopf", logging.ERROR, __file__, 1, text, None, None)
        return record if KopfNoise(level).filter(record) else None

    assert logged(wait, logging.INFO) is None  # an expected wait says nothing by default
    shown = logged(wait, logging.DEBUG)
    assert shown is not None and shown.levelno == logging.DEBUG
    kept = logged(failure, logging.INFO)
    assert kept is not None and kept.levelno == logging.ERROR


def test_the_log_filter_drops_the_secret_watch_successes_only() -> None:
    def shown(text: str) -> bool:
        record = logging.LogRecord("kopf.objects", logging.INFO, __file__, 1, text, None, None)
        return KopfNoise().filter(record)

    assert not shown("Handler 'register.<locals>.runtime_secret_changed' succeeded.")
    assert shown("Handler 'register.<locals>.reconcile' succeeded.")
    assert shown("Handler 'register.<locals>.runtime_secret_changed' failed with an exception.")


async def test_sweeper_deletes_unclaimed_servers_and_devices_after_the_grace() -> None:
    h, ts = FakeHetzner(), FakeTailnet()
    now = [0.0]
    op = fake_operator(OperatorConfig(namespace="ns", orphan_grace=10), h, ts)
    live, gone, other_ns = (
        AgentRef("ns", "live", "u1"),
        AgentRef("ns", "gone", "u2"),
        AgentRef("elsewhere", "x", "u3"),
    )
    for ref in (live, gone, other_ns):
        await _create(h, ref)
        key = await ts.create_auth_key(tags=["tag:aura-agent"], description="", expiry_seconds=1)
        ts.join(key.key, naming.server_name(ref))
    agents = [{"metadata": {"namespace": "ns", "name": "live", "uid": "u1"}, "spec": {}}]
    sweeper = Sweeper(op, clock=lambda: now[0])
    assert await sweeper.sweep(agents) == 0  # first sight starts the grace period
    now[0] = 11
    assert await sweeper.sweep(agents) == 2  # gone's server and device
    names = {s.name for s in h.servers.values()}
    assert names == {naming.server_name(live), naming.server_name(other_ns)}
    hostnames = {d.hostname for d in ts.devices.values()}
    assert hostnames == {naming.server_name(live), naming.server_name(other_ns)}
    await op.http.aclose()
