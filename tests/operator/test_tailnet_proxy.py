"""`--tailnet-proxy`: the operator reaches agent hosts only through the tailnet sidecar's proxy.

A real proxy (tests/tailnet_proxy.py: SOCKS5 and HTTP on one port, like tailscaled in userspace
mode) stands between the operator and its "tailnet", whose devices have names ending in
`.tailnet.test`: a reserved TLD that never resolves, so a direct connection attempt cannot
succeed and every success went through the proxy. The operator objects come from
`build_operator`, i.e. the production wiring, not hand-built clients.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from aura.configure.ansible import AnsibleConfigurator
from aura.configure.proxy import ansible_ssh_env, http_proxy_url, parse_proxy, ssh_proxy_args
from aura.controller.app import build_operator
from aura.controller.clients.gateway import probe_readyz
from aura.controller.settings import OperatorConfig
from tests.ansible.conftest import PLAYBOOKS
from tests.sshd import Sshd
from tests.tailnet_proxy import TailnetProxy

GATEWAY = ("gateway.tailnet.test", 18789)
HOST = ("agent-1.tailnet.test", 22)


class _Readyz(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"ready": True, "path": self.path}).encode()
        self.send_response(200 if self.path == "/readyz" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def gateway() -> Iterator[tuple[str, int]]:
    """A gateway's /readyz on 127.0.0.1: the tailnet device behind GATEWAY."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Readyz)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield ("127.0.0.1", server.server_address[1])
    server.shutdown()


@pytest.fixture
def proxy(gateway: tuple[str, int], sshd: Sshd) -> Iterator[TailnetProxy]:
    p = TailnetProxy(routes={GATEWAY: gateway, HOST: (sshd.host, sshd.port)}).start()
    yield p
    p.stop()


def test_the_setting_is_validated_with_a_clear_error() -> None:
    assert parse_proxy("127.0.0.1:1055") == ("127.0.0.1", 1055)
    assert parse_proxy("socks5://[::1]:1055") == ("::1", 1055)
    assert http_proxy_url("localhost:1055") == "http://localhost:1055"
    assert http_proxy_url(None) is None and ssh_proxy_args("") == [] and ansible_ssh_env(None) == {}
    for bad in ("1055", "localhost", "host:0", "host:http"):
        with pytest.raises(ValueError, match=r"--tailnet-proxy .* HOST:PORT"):
            parse_proxy(bad)


async def test_gateway_probe_goes_through_the_proxy(proxy: TailnetProxy) -> None:
    op = await build_operator(
        OperatorConfig(tailnet_proxy=proxy.address, configurator="ansible"),
        SimpleNamespace(api=None),  # type: ignore[arg-type]
    )
    try:
        probe = await probe_readyz(op.http, f"http://{GATEWAY[0]}:{GATEWAY[1]}")
    finally:
        await op.http.aclose()
    assert probe.ok, probe.detail
    assert proxy.requests == [("http", *GATEWAY)]


async def test_gateway_probe_without_the_proxy_cannot_reach_the_tailnet() -> None:
    op = await build_operator(
        OperatorConfig(configurator="ansible", health_timeout=3),
        SimpleNamespace(api=None),  # type: ignore[arg-type]
    )
    try:
        probe = await probe_readyz(op.http, f"http://{GATEWAY[0]}:{GATEWAY[1]}")
    finally:
        await op.http.aclose()
    assert not probe.ok
    assert "unreachable" in probe.detail


async def test_ansible_connects_over_ssh_through_the_socks5_proxy(
    proxy: TailnetProxy, sshd: Sshd, tmp_path: Path
) -> None:
    op = await build_operator(
        OperatorConfig(tailnet_proxy=proxy.address, configurator="ansible"),
        SimpleNamespace(api=None),  # type: ignore[arg-type]
    )
    await op.http.aclose()
    assert isinstance(op.configurator, AnsibleConfigurator)
    # The operator's own configurator settings, with the test playbook instead of site.yml.
    configurator = AnsibleConfigurator(
        ansible_dir=PLAYBOOKS, playbook="ok.yml", extra_env=op.configurator.extra_env
    )
    out = tmp_path / "out"
    out.mkdir()
    target = sshd.target(host=HOST[0], port=HOST[1], extra_vars={"out_dir": str(out)})

    result = await configurator.configure(target)

    assert result.ok, result.message
    assert (out / "ok.txt").exists()
    assert proxy.requests and set(proxy.requests) == {("socks5", *HOST)}


async def test_without_the_proxy_ansible_cannot_reach_a_tailnet_name(
    sshd: Sshd, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    configurator = AnsibleConfigurator(ansible_dir=PLAYBOOKS, playbook="ok.yml")
    result = await configurator.configure(
        sshd.target(host=HOST[0], port=HOST[1], extra_vars={"out_dir": str(out)})
    )
    assert not result.ok
    assert not (out / "ok.txt").exists()
