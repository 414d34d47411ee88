"""`aura sandbox` as a process: the ready line, signals and `--state`."""

from __future__ import annotations

import signal
from pathlib import Path

import hcloud
import pytest
from hcloud.images import Image
from hcloud.server_types import ServerType

from aura_sandbox.harness import ReadyInfo, SandboxProcess
from tests.sandbox.openapi import OpenApiValidator

READY_KEYS = {
    "hetzner_url",
    "hetzner_token",
    "tailscale_url",
    "tailscale_client_id",
    "tailscale_client_secret",
    "tailscale_tailnet",
    "admin_url",
}


def _client(token: str, url: str, validator: OpenApiValidator) -> hcloud.Client:
    client = hcloud.Client(token=token, api_endpoint=url)
    client._client._session.hooks["response"].append(validator.requests_hook)
    return client


def test_ready_line_and_sigterm(validator: OpenApiValidator) -> None:
    with SandboxProcess("--time-scale", "0.01") as proc:
        assert set(proc.info) >= READY_KEYS
        assert proc.ready.hetzner_url.startswith("http://127.0.0.1:")
        assert proc.ready.hetzner_url.endswith("/v1")
        client = _client(proc.ready.hetzner_token, proc.ready.hetzner_url, validator)
        assert len(client.locations.get_all()) == 6
        assert proc.terminate() == 0
        assert proc.proc is not None and proc.proc.stdout is not None
        assert proc.proc.stdout.read() == ""  # exactly one line


def test_sigint_exits_cleanly() -> None:
    with SandboxProcess() as proc:
        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGINT)
        assert proc.proc.wait(10) == 0


def test_state_survives_a_restart(tmp_path: Path, validator: OpenApiValidator) -> None:
    state = tmp_path / "state.json"
    args = ("--time-scale", "0.01", "--state", str(state), "--hetzner-token", "fixed-token")
    with SandboxProcess(*args) as proc:
        client = _client("fixed-token", proc.ready.hetzner_url, validator)
        created = client.servers.create(
            name="durable", server_type=ServerType(name="cx22"), image=Image(name="debian-12")
        )
        assert proc.terminate() == 0
    with SandboxProcess(*args) as proc:
        client = _client("fixed-token", proc.ready.hetzner_url, validator)
        server = client.servers.get_by_name("durable")
        assert server is not None and server.id == created.server.id
        assert server.status == "running"
        assert proc.terminate() == 0


def test_ready_line_is_parsed_once_and_names_missing_keys() -> None:
    line = {
        "hetzner_url": "http://127.0.0.1:1/v1",
        "hetzner_token": "t",
        "admin_url": "http://127.0.0.1:1/admin",
        "tailscale_url": "http://127.0.0.1:1",
        "tailscale_client_id": "id",
        "tailscale_client_secret": "secret",
        "tailscale_tailnet": "example.com",
        "stripe_url": "http://127.0.0.1:1/stripe",
    }
    with pytest.raises(ValueError, match="lacks stripe_api_key"):
        ReadyInfo.parse(line)
    ready = ReadyInfo.parse(line | {"stripe_api_key": "sk_test_x"})
    assert ready.base_url == "http://127.0.0.1:1"
    assert ready.stripe_api_key == "sk_test_x"
