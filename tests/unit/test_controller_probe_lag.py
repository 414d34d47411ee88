"""A probe that says nothing about the gateway (our pool full, or a timeout while the
operator's event loop lags) leaves a Running Agent Running; the same timeout on a quiet
loop is evidence and turns it Degraded."""

from __future__ import annotations

from typing import Any

import httpx

from aura.controller import conditions
from aura.controller.clients.gateway import Probe
from aura.controller.conditions import Reason
from aura.controller.looplag import LAG_LIMIT, WINDOW, LoopLag
from aura.controller.reconcile.context import Done, Wait
from tests.unit.test_controller_reconcile import World

TIMED_OUT = Probe(False, "handshake not completed within 5s (wedged)", timed_out=True)


async def _running() -> World:
    w = World(health_interval=30)
    assert isinstance(await w.converge(), Done)
    assert conditions.is_true(w.status.conditions, conditions.HEALTHY)

    async def times_out(*_: Any, **__: Any) -> Probe:
        return TIMED_OUT

    w.op.handshake = times_out
    return w


async def test_a_timeout_while_the_loop_lags_is_inconclusive() -> None:
    w = await _running()
    w.op.loop_lag.record(100.0, LAG_LIMIT + 2)
    result = await w.one_pass()
    assert isinstance(result, Wait)
    assert result.delay == 30 and "inconclusive" in result.reason
    assert conditions.is_true(w.status.conditions, conditions.HEALTHY)
    assert not [e for e in w.events.posted if e[1] == "Unhealthy"]


async def test_the_same_timeout_on_a_quiet_loop_is_evidence() -> None:
    w = await _running()
    w.op.loop_lag.record(100.0, LAG_LIMIT / 2)
    await w.one_pass()
    assert not conditions.is_true(w.status.conditions, conditions.HEALTHY)
    assert conditions.reason_of(w.status.conditions, conditions.HEALTHY) == (
        Reason.GATEWAY_UNHEALTHY
    )
    assert [e for e in w.events.posted if e[1] == "Unhealthy"]


async def test_a_full_connection_pool_is_never_evidence() -> None:
    w = await _running()

    def pool_full(request: httpx.Request) -> httpx.Response:
        raise httpx.PoolTimeout("no connection free", request=request)

    w.op.http = httpx.AsyncClient(transport=httpx.MockTransport(pool_full))
    result = await w.one_pass()
    assert isinstance(result, Wait) and "connection pool full" in result.reason
    assert conditions.is_true(w.status.conditions, conditions.HEALTHY)


def test_lag_counts_only_within_its_window() -> None:
    lag = LoopLag()
    assert lag.worst() == 0.0 and not lag.lagging()
    lag.record(10.0, LAG_LIMIT + 1)
    assert lag.lagging()
    lag.record(10.0 + WINDOW + 1, 0.01)  # the late sample has left the window
    assert not lag.lagging() and lag.worst() == 0.01
