"""Reconcile steps against the stateful fakes: creation, adoption, rollback, cleanup."""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from aura.configure.base import ConfigResult
from aura.controller import errors, naming
from aura.controller.clients.gateway import Probe
from aura.controller.clients.kube import AgentRef
from aura.controller.clients.servercache import ServerCache
from aura.controller.reconcile.agent import reconcile_agent
from aura.controller.reconcile.context import AgentContext, Done, Wait
from aura.controller.runtime import Operator
from aura.controller.settings import OperatorConfig
from aura.models import AgentSpec, AgentStatus, DesiredState
from tests.fakes.hetzner import FakeHetzner
from tests.fakes.kube import FakeConfigurator, FakeEvents, FakeHosts, FakeSecrets
from tests.fakes.tailnet import FakeTailnet

REF = AgentRef("ns", "agent", "uid-0001")


class FakeClock:
    """The operator's clock, moved by the test instead of by sleeping."""

    def __init__(self) -> None:
        self.at = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


class World:
    """An Operator wired to fakes, plus a helper to run passes like kopf would."""

    async def handshake(
        self,
        base_url: str,
        token: str | None,
        *,
        handshake_seconds: float,
        proxy: str | None = None,
    ) -> Probe:
        """The gateway's WebSocket: completes unless the test wedged it."""
        self.handshakes.append(token)
        return Probe(not self.wedged, "wedged" if self.wedged else "hello-ok")

    def __init__(self, **config: Any) -> None:
        self.wedged = False
        self.handshakes: list[str | None] = []
        self.hetzner = FakeHetzner()
        self.tailnet = FakeTailnet()
        self.secrets = FakeSecrets()
        self.events = FakeEvents()
        self.configurator = FakeConfigurator()
        self.clock = FakeClock()
        ready = httpx.MockTransport(lambda r: httpx.Response(200, json={"ready": True}))
        self.op = Operator(
            config=OperatorConfig(**{"server_list_max_age": 0, "poll_interval": 0, **config}),
            hetzner=self.hetzner,
            servers=ServerCache(self.hetzner, label_selector=naming.MANAGED_SELECTOR, max_age=0),
            tailnet=self.tailnet,
            secrets=self.secrets,
            events=self.events,
            hosts=FakeHosts(),
            configurator=self.configurator,
            http=httpx.AsyncClient(transport=ready),
            clock=self.clock,
            handshake=self.handshake,
        )
        self.status = AgentStatus()
        self.spec = AgentSpec()
        self.generation = 1
        self.annotations: dict[str, str] = {}

    def ctx(self) -> AgentContext:
        return AgentContext(
            op=self.op,
            ref=REF,
            spec=self.spec,
            generation=self.generation,
            annotations=dict(self.annotations),
            status=self.status,
            log=logging.getLogger("test"),
        )

    async def one_pass(self) -> Done | Wait:
        ctx = self.ctx()
        try:
            return await reconcile_agent(ctx)
        finally:
            self.events.posted.extend(ctx.events)  # what the driver would post

    def boot_everything(self) -> None:
        """The cloud catches up: servers run, cloud-init joins each to the tailnet."""
        for server in list(self.hetzner.servers.values()):
            if server.status in ("initializing", "starting"):
                self.hetzner.set_status(server.id, "running")
                data = self.secrets.data.get((REF.namespace, naming.auth_key_secret(REF)))
                if data and data["authkey"] in {k.key for k in self.tailnet.keys.values()}:
                    self.tailnet.join(data["authkey"], server.name)

    async def converge(self, passes: int = 20, *, waits: bool = False) -> Done | Wait:
        """Passes until Done. With `waits` the clock moves on by each Wait's delay, as kopf
        waits between passes (what ages the shared server and device lists)."""
        result: Done | Wait = Wait(0, "start")
        for _ in range(passes):
            try:
                result = await self.one_pass()
            except errors.Retryable:
                continue
            if isinstance(result, Done):
                return result
            self.boot_everything()
            if waits and result.delay:
                self.clock.advance(result.delay)
        return result


async def test_happy_path_creates_one_server_one_key_and_reports_everything() -> None:
    w = World()
    assert isinstance(await w.converge(), Done)
    assert w.hetzner.calls["create_server"] == 1
    assert w.tailnet.calls["create_auth_key"] == 1
    server = next(iter(w.hetzner.servers.values()))
    assert w.status.server is not None and w.status.server.id == server.id
    assert w.status.tailscale is not None and w.status.tailscale.ipv4
    assert w.status.provisioning is None
    assert {c.type: c.status.value for c in w.status.conditions} == dict.fromkeys(
        ["ServerReady", "Configured", "TailnetJoined", "Healthy", "Ready"], "True"
    )
    # The configurator got the pinned host key and the per-agent key from the SSH Secret.
    target = w.configurator.targets[0]
    ssh = w.secrets.data[("ns", "agent-ssh")]
    assert target.ssh_host_public_key == ssh["host-publickey"]
    assert target.ssh_private_key == ssh["ssh-privatekey"]
    # The key travels only inside user_data and its Secret.
    key = w.secrets.data[("ns", "agent-tailnet-authkey")]["authkey"]
    assert key in w.hetzner.user_data[server.id]
    assert key not in w.status.model_dump_json()


async def test_lost_create_response_is_adopted_by_label() -> None:
    w = World()
    w.hetzner.lose_create_response = True
    assert isinstance(await w.converge(), Done)
    assert len(w.hetzner.servers) == 1
    assert w.hetzner.calls["create_server"] == 1


async def test_uniqueness_error_adopts_the_server_with_our_name() -> None:
    w = World()
    await w.one_pass()  # Queued
    # Our server already exists (an earlier create went through) but the next list misses it.
    existing = await w.hetzner.create_server(
        name=naming.server_name(REF),
        server_type="cx22",
        location="nbg1",
        image="x",
        labels=naming.server_labels(REF),
        user_data="",
    )
    w.hetzner.hide_from_next_list = {existing.id}
    assert isinstance(await w.converge(), Done)
    assert list(w.hetzner.servers) == [existing.id]
    assert ("Normal", "AdoptedExistingServer", f"adopted server {existing.id}") in w.events.posted


async def test_failing_configuration_past_the_budget_rolls_back_to_failed() -> None:
    w = World(step_retries=3)
    w.configurator.results = [ConfigResult(ok=False, message="apt failed")] * 3
    for _ in range(30):
        with contextlib.suppress(errors.Retryable):
            await w.one_pass()
        w.boot_everything()
        if w.status.provisioning and w.status.provisioning.failed_generation:
            break
    assert w.status.provisioning is not None
    assert w.status.provisioning.failed_step == "configure"
    ready = next(c for c in w.status.conditions if c.type == "Ready")
    assert ready.reason == "RetryingAfterFailure" and "RetryBudgetExhausted" in ready.message
    assert w.hetzner.servers == {}
    assert ("ns", "agent-tailnet-authkey") not in w.secrets.data
    # Sticky during the back-off: no new attempt until nextAttemptAt.
    creates = w.hetzner.calls["create_server"]
    assert isinstance(await w.one_pass(), Wait)
    assert w.hetzner.calls["create_server"] == creates
    # A new generation retries from scratch and succeeds.
    w.generation = 2
    assert isinstance(await w.converge(), Done)
    assert len(w.hetzner.servers) == 1


async def test_delete_continues_past_one_failure_and_finishes_on_retry() -> None:
    w = World()
    await w.converge()
    w.spec = AgentSpec(desired_state=DesiredState.DELETED)
    w.tailnet.fail_next["list_devices"] = [errors.Retryable("tailscale 502")]
    with pytest.raises(errors.Retryable, match="tailnet device"):
        await w.one_pass()
    assert w.hetzner.servers == {}  # the server went although the device step failed
    assert ("ns", "agent-ssh") not in w.secrets.data
    assert len(w.tailnet.devices) == 1
    assert isinstance(await w.one_pass(), Done)
    assert w.tailnet.devices == {}
    ready = next(c for c in w.status.conditions if c.type == "Ready")
    assert ready.reason == "Deleted"


async def test_stop_sends_shutdown_then_poweroff_after_the_timeout() -> None:
    w = World(shutdown_timeout=120)
    await w.converge()
    w.spec = AgentSpec(desired_state=DesiredState.STOPPED)
    assert isinstance(await w.one_pass(), Wait)
    assert w.hetzner.calls["shutdown"] == 1
    assert w.status.shutdown_requested_at == w.clock.at
    # The server ignores the ACPI shutdown ("stopping" forever): within the timeout, wait.
    w.clock.advance(119)
    assert isinstance(await w.one_pass(), Wait)
    assert (w.hetzner.calls["shutdown"], w.hetzner.calls["power_off"]) == (1, 0)
    w.clock.advance(2)
    await w.one_pass()
    assert w.hetzner.calls["power_off"] == 1
    assert isinstance(await w.one_pass(), Done)
    ready = next(c for c in w.status.conditions if c.type == "Ready")
    assert ready.reason == "Stopped"


async def test_provision_deadline_rolls_back_whatever_step_is_running() -> None:
    w = World(provision_deadline=900, boot_timeout=10_000)
    await w.one_pass()  # Queued
    await w.one_pass()  # attempt starts, server created (still initializing)
    assert len(w.hetzner.servers) == 1
    assert w.status.provisioning is not None
    assert w.status.provisioning.started_at == w.clock.at
    w.clock.advance(900)
    assert isinstance(await w.one_pass(), Wait)  # at the deadline, not past it
    assert w.status.provisioning.step == "boot"
    w.clock.advance(1)
    assert isinstance(await w.one_pass(), Wait)  # the automatic retry, after a back-off
    ready = next(c for c in w.status.conditions if c.type == "Ready")
    assert ready.reason == "RetryingAfterFailure"
    assert "ProvisionDeadlineExceeded" in ready.message
    assert w.hetzner.servers == {}
    assert w.status.provisioning.failed_step == "boot"
    assert w.status.provisioning.rolled_back_at == w.clock.at


async def test_a_step_timeout_counts_from_when_the_attempt_began_waiting_in_it() -> None:
    w = World(boot_timeout=600)
    await w.one_pass()  # Queued
    await w.one_pass()  # server created (the pass ends at the phase change)
    await w.one_pass()  # initializing: the attempt waits in "boot"
    assert w.status.provisioning is not None and w.status.provisioning.step == "boot"
    began = w.status.provisioning.since
    for _ in range(3):  # passes while it waits do not restart the step's clock
        w.clock.advance(200)
        assert isinstance(await w.one_pass(), Wait)
    assert w.status.provisioning.since == began
    w.clock.advance(1)
    assert isinstance(await w.one_pass(), Wait)
    ready = next(c for c in w.status.conditions if c.type == "Ready")
    assert "ServerNeverBooted" in ready.message
    assert w.status.provisioning.failed_step == "boot"


async def test_stopping_pauses_the_attempt_and_frees_its_slot() -> None:
    w = World(max_concurrent_provisions=1)
    await w.one_pass()
    await w.one_pass()  # provisioning: holds the only slot
    assert w.op.slots.holders == {REF.uid}
    w.spec = AgentSpec(desired_state=DesiredState.STOPPED)
    await w.one_pass()
    p = w.status.provisioning
    assert p is not None and p.started_at is None  # paused: resumed, timed again, on start
    assert w.op.slots.holders == set()


async def test_runtime_change_reconfigures_the_same_server() -> None:
    from aura.models import RuntimeSpec

    w = World()
    await w.converge()
    assert len(w.configurator.targets) == 1
    await w.converge()  # a steady pass does not configure again
    assert len(w.configurator.targets) == 1
    w.spec = AgentSpec(runtime=RuntimeSpec(openclaw_version="2026.4.0"))
    w.generation = 2
    assert isinstance(await w.converge(), Done)
    assert [t.openclaw_version for t in w.configurator.targets] == ["2026.3.1", "2026.4.0"]
    assert w.hetzner.calls["create_server"] == 1
    # The first run reached the fresh server publicly; the playbook then closed public SSH,
    # so the second goes over the tailnet.
    first, second = w.configurator.targets
    assert first.host == w.status.server.ipv4
    assert second.host == w.status.tailscale.ipv4
    assert second.host != first.host


async def test_a_missing_runtime_secret_waits_queued_without_any_cloud_call() -> None:
    from aura.controller.conditions import derive_phase
    from aura.models import RuntimeSpec, SecretRef

    w = World()
    w.spec = AgentSpec(runtime=RuntimeSpec(secret_ref=SecretRef(name="keys")))
    await w.one_pass()  # Queued on first sight
    for _ in range(3):
        result = await w.one_pass()
        assert isinstance(result, Wait) and result.delay is None  # woken by the Secret watch
        w.clock.advance(10_000)  # far past every deadline: nothing is counting
    server_ready = next(c for c in w.status.conditions if c.type == "ServerReady")
    assert server_ready.reason == "WaitingForRuntimeSecret"
    assert "Secret keys" in server_ready.message and "does not exist" in server_ready.message
    assert derive_phase(w.status.conditions, w.spec.desired_state).value == "Queued"
    assert sum(w.hetzner.calls.values()) == sum(w.tailnet.calls.values()) == 0
    assert w.status.provisioning is None and w.op.slots.holders == set()

    # A Secret without the gateway token: the message names the missing key.
    w.secrets.data[("ns", "keys")] = {"ANTHROPIC_API_KEY": "k-1"}
    assert isinstance(await w.one_pass(), Wait)
    server_ready = next(c for c in w.status.conditions if c.type == "ServerReady")
    assert (
        "Secret keys" in server_ready.message and "OPENCLAW_GATEWAY_TOKEN" in server_ready.message
    )
    assert sum(w.hetzner.calls.values()) == 0

    w.secrets.data[("ns", "keys")]["OPENCLAW_GATEWAY_TOKEN"] = "gw-1"
    assert isinstance(await w.converge(), Done)
    assert w.hetzner.calls["create_server"] == 1
    assert w.configurator.targets[0].runtime_env == {
        "ANTHROPIC_API_KEY": "k-1",
        "OPENCLAW_GATEWAY_TOKEN": "gw-1",
    }


async def test_without_a_runtime_secret_the_operator_generates_the_gateway_token() -> None:
    w = World()
    assert isinstance(await w.converge(), Done)
    generated = w.secrets.data[("ns", naming.gateway_token_secret(REF))]
    assert len(generated["OPENCLAW_GATEWAY_TOKEN"]) >= 32
    assert w.secrets.owners[("ns", naming.gateway_token_secret(REF))] == REF.uid
    assert w.configurator.targets[0].runtime_env == generated
    assert generated["OPENCLAW_GATEWAY_TOKEN"] not in w.status.model_dump_json()
    assert any(e[1] == "GatewayTokenGenerated" for e in w.events.posted)
    # Deleting the Agent deletes the Secret it owns.
    w.spec = AgentSpec(desired_state=DesiredState.DELETED)
    assert isinstance(await w.one_pass(), Done)
    assert ("ns", naming.gateway_token_secret(REF)) not in w.secrets.data


class _BrokenConfigurator:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def configure(self, target: object) -> ConfigResult:
        raise self.error


async def test_a_configurator_bug_surfaces_as_a_bug_not_as_a_retry() -> None:
    w = World()
    w.op.configurator = _BrokenConfigurator(KeyError("inventory"))
    with pytest.raises(KeyError):
        await w.converge()
    assert w.status.provisioning is not None and w.status.provisioning.failures == 0


async def test_a_configuration_error_is_retried_within_the_budget() -> None:
    from aura.configure.base import ConfigurationError

    w = World(step_retries=3)
    w.op.configurator = _BrokenConfigurator(ConfigurationError("sandbox answered 503"))
    for _ in range(10):  # up to the configure step
        if w.status.server is not None and w.status.server.status == "running":
            break
        await w.one_pass()
        w.boot_everything()
    with pytest.raises(errors.Retryable, match="configurator error: sandbox answered 503"):
        await w.one_pass()
    assert w.status.provisioning is not None
    assert (w.status.provisioning.failed_step, w.status.provisioning.failures) == ("configure", 1)
