"""Failed provisioning attempts: transient causes retry by themselves after a growing back-off
(shown in status), permanent causes wait for the user; time comes from the injected clock."""

from __future__ import annotations

import contextlib
import random

import pytest

from aura.configure.base import ConfigResult
from aura.controller import errors
from aura.controller.clients.devicecache import DeviceCache
from aura.controller.conditions import derive_phase
from aura.controller.reconcile.attempt import backoff_seconds
from aura.controller.reconcile.context import Done, Wait
from aura.models import Phase
from tests.unit.test_controller_reconcile import World

FAIL = ConfigResult(ok=False, message="apt failed")


def _ready(w: World) -> tuple[str, str]:
    ready = next(c for c in w.status.conditions if c.type == "Ready")
    return ready.reason, ready.message


async def _until_rolled_back(w: World, passes: int = 40) -> None:
    for _ in range(passes):
        with contextlib.suppress(errors.Retryable):
            await w.one_pass()
        w.boot_everything()
        p = w.status.provisioning
        if p is not None and p.failed_generation is not None and p.rolled_back_at is not None:
            return
    raise AssertionError(f"never rolled back: {w.status.provisioning}")


@pytest.mark.parametrize("cap", [300.0, 3.0, 1800.0])
def test_backoff_is_quadratic_with_jitter_and_capped(cap: float) -> None:
    rng = random.Random(7)
    interval = cap / 30
    for failures in range(1, 12):
        base = interval * failures**2
        for _ in range(50):
            got = backoff_seconds(failures, cap, rng)
            assert min(cap, base) <= got <= min(cap, base * 1.5 + interval / 10)
    assert backoff_seconds(100, cap, rng) == cap
    # At the default cap: 10-16 s after the first failure, as in KubeVirt.
    if cap == 300.0:
        assert all(10 <= backoff_seconds(1, cap, rng) <= 16 for _ in range(50))


async def test_a_transient_failure_retries_by_itself_after_a_growing_backoff() -> None:
    w = World(step_retries=2, attempt_backoff_max=300, poll_interval=5)
    # The shared device list ages with the test's clock (read at most every poll interval).
    w.op.devices = DeviceCache(w.tailnet, clock=lambda: w.clock.at.timestamp())
    w.configurator.results = [FAIL] * 4  # two attempts fail at configure, the third succeeds
    await _until_rolled_back(w)
    p = w.status.provisioning
    assert p is not None and p.consecutive_failures == 1
    assert p.next_attempt_at is not None
    first_wait = (p.next_attempt_at - w.clock.at).total_seconds()
    assert 10 <= first_wait <= 16
    reason, message = _ready(w)
    assert reason == "RetryingAfterFailure"
    assert "retrying at" in message and p.next_attempt_at.isoformat() in message
    assert derive_phase(w.status.conditions, w.spec.desired_state) == Phase.FAILED

    # During the back-off: nothing is created, the pass asks to come back when it ends.
    creates = w.hetzner.calls["create_server"]
    w.clock.advance(first_wait - 1)
    result = await w.one_pass()
    assert isinstance(result, Wait) and result.delay == pytest.approx(1, abs=0.01)
    assert w.status.provisioning is not None and w.status.provisioning.attempt == 1
    assert w.hetzner.calls["create_server"] == creates

    # When it ends: a second attempt, which fails the same way; the back-off grows.
    w.clock.advance(1)
    await _until_rolled_back(w)
    assert w.hetzner.calls["create_server"] == creates + 1
    p = w.status.provisioning
    assert p is not None and p.consecutive_failures == 2 and p.attempt == 2
    assert p.next_attempt_at is not None
    assert 40 <= (p.next_attempt_at - w.clock.at).total_seconds() <= 61
    assert any(
        e[1] == "RetryingProvisioning" and "after 1 transient" in e[2] for e in w.events.posted
    )

    # The third attempt succeeds: the count and the rest of the attempt's memory are gone.
    w.clock.advance(61)
    assert isinstance(await w.converge(waits=True), Done)
    assert w.status.provisioning is None
    assert _ready(w)[0] == "Ready"
    assert len(w.hetzner.servers) == 1


async def test_a_permanent_failure_waits_for_the_spec_or_the_annotation() -> None:
    w = World(attempt_backoff_max=300)
    await w.one_pass()  # Queued
    w.hetzner.fail_next["create_server"] = [
        errors.InvalidRequest("server type cx99 not found", reason="InvalidRequest")
    ]
    with contextlib.suppress(errors.Retryable):
        await w.one_pass()
    p = w.status.provisioning
    assert p is not None and p.failed_generation == 1
    assert p.next_attempt_at is None and p.consecutive_failures == 0
    reason, message = _ready(w)
    assert reason == "ProvisioningFailed" and "aura.dev/retry" in message
    assert derive_phase(w.status.conditions, w.spec.desired_state) == Phase.FAILED

    w.clock.advance(100_000)  # far past any back-off: still no new attempt
    assert isinstance(await w.one_pass(), Done)
    assert w.hetzner.calls["create_server"] == 1

    # The annotation retries (the fault is gone): a fresh attempt that succeeds.
    w.annotations = {"aura.dev/retry": "1"}
    assert isinstance(await w.converge(), Done)
    assert w.hetzner.calls["create_server"] == 2
    assert w.status.provisioning is None


async def test_a_user_retry_resets_the_transient_count() -> None:
    w = World(step_retries=1, attempt_backoff_max=300)
    w.configurator.results = [FAIL]
    await _until_rolled_back(w)
    assert w.status.provisioning is not None
    assert w.status.provisioning.consecutive_failures == 1
    w.generation = 2  # a spec change during the back-off starts at once, from zero
    await w.one_pass()
    p = w.status.provisioning
    assert p is not None and p.failed_generation is None and p.consecutive_failures == 0
