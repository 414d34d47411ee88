"""Python API for tests: run a sandbox in-process or as a subprocess.

In-process (fast, inspectable)::

    with Sandbox(time_scale=0.01) as sb:
        client = sb.ready.hcloud()                # an hcloud.Client pointed at the sandbox
        sb.inject("http_error", status=503, path="^/v1/servers$", method="POST")
        sb.server(server_id)["cloud_init"]        # the admin view of a server
        sb.call(lambda world: len(world.servers)) # run code on the sandbox's event loop

`Sandbox` runs its own event loop in a daemon thread on a free loopback port. The world is
single-threaded: read or change it only through `call(fn)`, which runs `fn(world)` on that
loop and returns the result.

As a pytest fixture (tests/sandbox/conftest.py has this one)::

    @pytest.fixture
    def sandbox() -> Iterator[Sandbox]:
        with Sandbox(time_scale=0.01) as sb:
            yield sb

As a subprocess (for tests that kill or restart the process)::

    with SandboxProcess("--time-scale", "0.01", "--state", str(path)) as proc:
        proc.ready.hetzner_url; proc.terminate()

Both expose the ready line as `info` (the JSON object) and `ready` (a `ReadyInfo`, parsed once:
`hetzner_url`, `hetzner_token`, `admin_url`, `tailscale_*`, `stripe_url`, `stripe_api_key`).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, fields, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from aura_sandbox import host
from aura_sandbox.admin_servers import server_view
from aura_sandbox.app import SandboxRuntime
from aura_sandbox.config import SandboxConfig
from aura_sandbox.world import World

if TYPE_CHECKING:
    import hcloud

T = TypeVar("T")


@dataclass(frozen=True)
class ReadyInfo:
    """The sandbox's ready line (the JSON object `aura sandbox` prints first), parsed once."""

    hetzner_url: str
    hetzner_token: str
    admin_url: str
    tailscale_url: str
    tailscale_client_id: str
    tailscale_client_secret: str
    tailscale_tailnet: str
    stripe_url: str
    stripe_api_key: str

    @classmethod
    def parse(cls, line: dict[str, Any]) -> ReadyInfo:
        """The typed view of `line`; ValueError naming every missing key."""
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if not isinstance(line.get(n), str)]
        if missing:
            raise ValueError(f"sandbox ready line lacks {', '.join(missing)}: {sorted(line)}")
        return cls(**{n: line[n] for n in names})

    @property
    def base_url(self) -> str:
        return self.admin_url.removesuffix("/admin")

    def hcloud(self, **kwargs: Any) -> hcloud.Client:
        """An `hcloud.Client` for this sandbox; polls actions every 50 ms unless told."""
        import hcloud

        kwargs.setdefault("poll_interval", 0.05)
        return hcloud.Client(token=self.hetzner_token, api_endpoint=self.hetzner_url, **kwargs)


class _Started:
    """`info` (the raw ready line) and `ready` (its parsed view) once started."""

    info: dict[str, Any]
    _ready: ReadyInfo | None = None

    def _started(self, line: dict[str, Any]) -> None:
        self.info, self._ready = line, ReadyInfo.parse(line)

    @property
    def ready(self) -> ReadyInfo:
        if self._ready is None:
            raise RuntimeError("the sandbox is not started")
        return self._ready


class Sandbox(_Started):
    """An in-process sandbox; see the module docstring. `**overrides` set `SandboxConfig`
    fields (e.g. `time_scale=0.01`, `rate_limit_capacity=5`)."""

    def __init__(self, config: SandboxConfig | None = None, **overrides: Any) -> None:
        self.config = replace(config or SandboxConfig(), **overrides)
        self.info = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runtime: SandboxRuntime | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Sandbox:
        started: Future[dict[str, Any]] = Future()
        loop = self._loop = asyncio.new_event_loop()
        runtime = self._runtime = SandboxRuntime(self.config)

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                started.set_result(loop.run_until_complete(runtime.start()))
            except BaseException as exc:
                started.set_exception(exc)
                return
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="aura-sandbox", daemon=True)
        self._thread.start()
        self._started(started.result(timeout=30))
        return self

    def stop(self) -> None:
        if self._loop is None or self._runtime is None:
            return
        asyncio.run_coroutine_threadsafe(self._runtime.stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop.close()
        self._loop = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def world(self) -> World:
        """The live world: only touch it through `call()`."""
        assert self._runtime is not None
        return self._runtime.world

    def call(self, fn: Callable[[World], T]) -> T:
        """Run `fn(world)` on the sandbox event loop and return its result."""
        assert self._loop is not None

        async def run() -> T:
            return fn(self.world)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)

    def inject(self, kind: str, *, count: int | None = 1, **spec: Any) -> dict[str, Any]:
        """Add a fault (see `faults`); `probability=` replaces `count`. Returns its view."""
        if spec.get("probability") is None:
            spec["count"] = count
        return self.call(lambda world: world.faults.add(kind, **spec).to_dict())

    def clear_faults(self) -> None:
        self.call(lambda world: world.faults.clear())

    def server(self, server_id: int) -> dict[str, Any]:
        """The admin view of a server (KeyError when it does not exist)."""
        return self.call(lambda world: server_view(world, world.servers[server_id]))

    def configure(
        self, server_id: int, openclaw_version: str = "2026.2.26", gateway_token: str | None = None
    ) -> None:
        """What a finished configuration run leaves behind, at once (a test that ran the real
        playbook elsewhere uses this; `POST /admin/servers/{id}/configure` takes the time)."""

        def mark(world: World) -> None:
            server = world.servers[server_id]
            if server.status != "running":
                raise RuntimeError(f"server {server_id} is {server.status}, not running")
            host.apply_configuration(
                world, server, openclaw_version, gateway_token, install_only=False
            )

        self.call(mark)

    def request_counts(self) -> dict[str, int]:
        return self.call(lambda world: dict(world.request_counts))


class SandboxProcess(_Started):
    """`aura sandbox --port 0 ARGS...` as a child process; `info` is its ready line."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.info = {}
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 30.0) -> SandboxProcess:
        cmd = [sys.executable, "-m", "aura_sandbox", "--port", "0", *self.args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line_box: list[str] = []
        reader = threading.Thread(target=lambda: line_box.append(self.proc.stdout.readline()))  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout)
        if not line_box or not line_box[0]:
            self.kill()
            raise RuntimeError("aura sandbox did not print its ready line")
        self._started(json.loads(line_box[0]))
        return self

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        self.proc.terminate()
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()
