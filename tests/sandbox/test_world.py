"""The world's contracts for other modules: listeners, scheduling, persistence, faults."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import hcloud
import pytest

from aura_sandbox.config import SandboxConfig
from aura_sandbox.faults import FaultError, FaultRegistry
from aura_sandbox.harness import Sandbox
from aura_sandbox.model import SimServer
from aura_sandbox.world import World
from tests.polling import wait_for
from tests.sandbox.conftest import validated_client
from tests.sandbox.hetzner_support import create, running
from tests.sandbox.openapi import OpenApiValidator


def test_listener_events(client: hcloud.Client, sandbox: Sandbox) -> None:
    events: list[tuple[str, str, bool]] = []

    def listen(event: str, server: SimServer) -> None:
        events.append((event, server.name, server.first_boot))

    def boom(event: str, server: SimServer) -> None:
        raise RuntimeError("a broken listener must not break the API")

    sandbox.call(lambda world: world.add_server_listener(boom))
    sandbox.call(lambda world: world.add_server_listener(listen))
    server = running(client, "heard")
    server.reboot().wait_until_finished()
    server.power_off().wait_until_finished()
    server.power_on().wait_until_finished()
    server.delete()
    assert events == [
        ("booted", "heard", True),
        ("booted", "heard", False),
        ("powered_off", "heard", False),
        ("booted", "heard", False),
        ("deleted", "heard", False),
    ]


def test_schedule_is_scaled() -> None:
    with Sandbox(time_scale=0.01) as sb:
        fired: list[float] = []
        started = time.monotonic()
        sb.call(lambda world: world.schedule(20.0, lambda: fired.append(time.monotonic())))
        wait_for(lambda: bool(fired), timeout=2)
        assert 0.15 <= fired[0] - started < 1.5
        # 30 simulated seconds are 0.3 s here: long enough for the cancel to arrive first on
        # a loaded machine, and the sleep outlasts it so a cancel that failed would show.
        handle = sb.call(lambda world: world.schedule(30.0, lambda: fired.append(0.0)))
        handle.cancel()
        time.sleep(0.5)
        assert len(fired) == 1


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value}

    def load_dict(self, d: dict[str, Any]) -> None:
        self.value = d["value"]


def test_state_round_trip(tmp_path: Path, validator: OpenApiValidator) -> None:
    state = tmp_path / "world.json"
    config = SandboxConfig(time_scale=0.01, state_file=state)
    with Sandbox(config) as sb:
        counter = Counter()
        sb.call(lambda world: world.register_part("counter", counter))
        counter.value = 7
        client = validated_client(sb, validator)
        server = create(client, "persisted", labels={"k": "v"}, wait=False).server
        image_action = None
        del image_action
    assert state.exists()
    with Sandbox(config) as sb:
        again = Counter()
        # Parts registered after start are loaded by hand, as a module's setup() would be.
        sb.call(lambda world: world.register_part("counter", again))
        sb.call(lambda world: world.load(state))
        assert again.value == 7
        restored = validated_client(sb, validator).servers.get_by_id(server.id)
        # Timers do not survive a restart: in-flight boots are settled as finished.
        assert (restored.name, restored.status, restored.labels) == (
            "persisted",
            "running",
            {"k": "v"},
        )
        assert sb.server(server.id)["cloud_init"] == "done"
        new = create(validated_client(sb, validator), "after-restart", wait=False).server
        assert new.id > server.id


def test_fault_registry_budget_and_matching() -> None:
    registry = FaultRegistry()
    registry.add("http_error", count=2, method="post", path="^/v1/servers$", status=500)
    assert registry.consume("http_error", method="GET", path="/v1/servers") is None
    assert registry.consume("http_error", method="POST", path="/v1/servers/1") is None
    assert registry.consume("http_error", method="POST", path="/v1/servers") is not None
    assert registry.consume("http_error", method="POST", path="/v1/servers") is not None
    assert registry.consume("http_error", method="POST", path="/v1/servers") is None
    registry.add("device_never_joins", server_name="a")
    assert registry.consume("device_never_joins", server_name="b") is None
    assert registry.consume("device_never_joins") is None
    assert registry.consume("device_never_joins", server_name="a") is not None
    registry.add("latency", probability=0.0)
    assert registry.consume("latency") is None
    assert len(registry.list()) == 1
    with pytest.raises(FaultError):
        registry.add("meteor")
    with pytest.raises(FaultError):
        registry.add("latency", colour="red")
    with pytest.raises(FaultError):
        registry.add("latency", path="(")


def test_world_now_is_utc() -> None:
    world = World(SandboxConfig())
    assert world.now().utcoffset() is not None
    assert world.now().utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_autosave(tmp_path: Path, validator: OpenApiValidator) -> None:
    state = tmp_path / "auto.json"
    with Sandbox(time_scale=0.01, state_file=state, save_interval=0.05) as sb:
        create(validated_client(sb, validator), "autosaved", wait=False)
        wait_for(lambda: state.exists() and "autosaved" in state.read_text(), timeout=3)
