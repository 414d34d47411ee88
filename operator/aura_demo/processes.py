"""Child processes of the demo: started with their output in log files, stopped on exit.

Every process is started in its own session so a Ctrl-C in the terminal reaches only the
demo, which then stops its children in reverse order (SIGTERM, then SIGKILL after a grace
period). Nothing outlives the demo unless `--keep` asks for it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import httpx


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ChildProcess:
    """One `aura <subcommand>` child with its stderr in `<log_dir>/<name>.log`."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aura", *args],
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
        )

    def read_json_line(self, timeout: float) -> dict[str, Any]:
        """The first stdout line, parsed as JSON (the sandbox's ready line)."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        os.set_blocking(self.proc.stdout.fileno(), False)
        buffer = b""
        while time.monotonic() < deadline:
            chunk = self.proc.stdout.read()
            if chunk:
                buffer += chunk
                if b"\n" in buffer:
                    parsed: dict[str, Any] = json.loads(buffer.split(b"\n", 1)[0])
                    return parsed
            self.check_alive()
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} printed no ready line within {timeout:.0f}s")

    def wait_http(self, url: str, timeout: float) -> None:
        """Wait until `url` answers 2xx."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if httpx.get(url, timeout=1.0).is_success:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} did not answer {url} within {timeout:.0f}s")

    def check_alive(self) -> None:
        """Raise with the log's tail if the process has exited."""
        if self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} exited with code {self.proc.returncode}:\n{tail}")

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; idempotent."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()
