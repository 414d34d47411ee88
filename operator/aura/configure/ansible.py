"""The production Configurator: runs the playbook in `ansible/` through ansible-runner.

Contract (see `aura.configure.base`):

- `configure(target)` runs `site.yml` (or the configured playbook) against one host and
  returns a `ConfigResult`: `ok=True` with the number of changed tasks, or `ok=False` with
  the failing task's name and the module's message (secrets redacted, truncated). A host that
  cannot be reached, including a host key that does not match the pinned one, is a failed
  run too, not an exception.
- It raises `ConfigurationTimeout` when the run takes longer than `timeout_seconds`; the
  ansible-playbook process group has been killed by then. Cancelling the awaiting task kills
  it the same way, then re-raises `CancelledError`.
- At most `max_concurrent` runs execute at once (one `asyncio.Semaphore`, shareable between
  configurators through `semaphore`); the rest wait their turn.

How secrets are kept out of logs and artifacts:

- Each run gets a fresh private directory (mode 0700) that is deleted afterwards. The SSH key
  (0600), the pinned known_hosts file and a vars file holding `runtime_env` and the
  Tailscale auth key live there and nowhere else; every playbook task that reads a secret
  has `no_log`.
- ansible-runner's artifacts are written inside that directory too, unless
  `artifacts_dir` asks to keep them; kept artifacts are stripped of the environment that
  ansible-runner copies into `artifacts/<ident>/command` (it holds the operator's own
  environment, with its cloud tokens).
- Messages in `ConfigResult` have every secret value of the target replaced by `***`.

Host keys are always checked: `StrictHostKeyChecking=yes` against a known_hosts file holding
only `target.ssh_host_public_key`. A target without a pinned host key is refused.

Inventory: one host in group `aura_agents`, named after the agent (`namespace-name`), with
`ansible_host`/`ansible_port`/`ansible_user`. Variables: `runtime_openclaw_version`,
`runtime_gateway_port`, `runtime_settings`, then `target.extra_vars` (which win), and the
secrets in a vars file (`inputs` says which).

This module runs one playbook in a thread and bridges it to asyncio (timeout, cancel); the
run's inputs are built in `inputs`, its events folded in `results`, and what it leaves behind
removed by `hygiene`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ansible_runner

from aura.configure.base import ConfigResult, ConfigTarget, ConfigurationTimeout
from aura.configure.hygiene import clean_up
from aura.configure.inputs import (
    DEFAULT_ANSIBLE_DIR,
    TAILSCALE_AUTHKEY_ENV,
    RunInputs,
    default_ansible_dir,
    find_ansible_playbook,
    short_tmp,
)
from aura.configure.results import RunRecord, collect, result_of, secret_values, tail

__all__ = [
    "DEFAULT_ANSIBLE_DIR",
    "TAILSCALE_AUTHKEY_ENV",
    "AnsibleConfigurator",
    "default_ansible_dir",
]

log = logging.getLogger(__name__)


class AnsibleConfigurator:
    """Configures agent hosts by running an Ansible playbook over SSH (see module docstring).

    Arguments:
        ansible_dir: the project directory holding the playbook, `roles/` and `ansible.cfg`
            (default: `default_ansible_dir()`).
        playbook: the playbook file inside `ansible_dir`.
        timeout_seconds: wall-clock limit for one run, waiting for a slot not included.
        max_concurrent: how many runs may execute at once (ignored if `semaphore` is given).
        semaphore: a semaphore shared with other configurators, to bound runs process-wide.
        work_dir: where private run directories are created (default: the system temp dir;
            `/dev/shm` keeps the short-lived secrets off disk).
        artifacts_dir: keep ansible-runner's artifacts (events, stdout) under this directory,
            one subdirectory per run, for debugging. Default: discard them with the run.
        extra_env: more environment variables for ansible-playbook (not secrets).
        ansible_playbook: path of the ansible-playbook executable; its directory goes first
            on PATH (default: the one next to this Python interpreter, else PATH's).
        stop_grace_seconds: how long a timed-out or cancelled run may take to die.
    """

    def __init__(
        self,
        *,
        ansible_dir: Path | None = None,
        playbook: str = "site.yml",
        timeout_seconds: float = 1800.0,
        max_concurrent: int = 4,
        semaphore: asyncio.Semaphore | None = None,
        work_dir: Path | None = None,
        artifacts_dir: Path | None = None,
        extra_env: Mapping[str, str] | None = None,
        stop_grace_seconds: float = 30.0,
        ansible_playbook: str | None = None,
    ) -> None:
        self.ansible_dir = (ansible_dir or default_ansible_dir()).resolve()
        if not (self.ansible_dir / playbook).is_file():
            raise ValueError(
                f"playbook {playbook} not found in {self.ansible_dir} (set AURA_ANSIBLE_DIR)"
            )
        if timeout_seconds <= 0 or max_concurrent < 1:
            raise ValueError("timeout_seconds must be > 0 and max_concurrent >= 1")
        self.playbook = playbook
        self.timeout_seconds = timeout_seconds
        self.semaphore = semaphore or asyncio.Semaphore(max_concurrent)
        self.work_dir = work_dir
        self.artifacts_dir = artifacts_dir
        self.extra_env = dict(extra_env or {})
        self.stop_grace_seconds = stop_grace_seconds
        self.ansible_playbook = ansible_playbook or find_ansible_playbook()
        self._inputs = RunInputs(
            ansible_dir=self.ansible_dir,
            playbook=playbook,
            ansible_playbook=self.ansible_playbook,
            artifacts_dir=artifacts_dir,
            extra_env=self.extra_env,
        )

    async def configure(self, target: ConfigTarget) -> ConfigResult:
        """Run the playbook against `target`; see the module docstring for the contract."""
        if len(target.ssh_host_public_key.split()) < 2:
            return ConfigResult(
                ok=False,
                message=f"refusing to connect to server {target.server_id}: "
                "its SSH host key is not known (no pinned host key)",
            )
        async with self.semaphore:
            return await self._configure(target)

    async def _configure(self, target: ConfigTarget) -> ConfigResult:
        started = time.monotonic()
        private = Path(tempfile.mkdtemp(prefix="aura-ansible-", dir=self.work_dir))
        # SSH control sockets need a short path (sun_path holds 108 bytes), so they get their
        # own directory rather than one inside a possibly deep work_dir.
        control = Path(tempfile.mkdtemp(prefix="aura-cp-", dir=short_tmp()))
        run_marker = uuid.uuid4().hex
        secrets = secret_values(target)
        cancel = threading.Event()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[RunRecord] = loop.create_future()
        try:
            kwargs = self._inputs.prepare(private, control, run_marker, target)
            run = RunRecord()
            thread = threading.Thread(
                target=self._run_in_thread,
                args=(kwargs, run, cancel, loop, done),
                name=f"ansible-{target.agent}",
                daemon=True,
            )
            log.info(
                "configuring %s (server %s) with %s", target.agent, target.server_id, self.playbook
            )
            thread.start()
            try:
                async with asyncio.timeout(self.timeout_seconds):
                    await asyncio.shield(done)
            except TimeoutError:
                cancel.set()
                await self._wait_stopped(done)
                log.warning(
                    "configuring %s timed out after %.0fs; run stopped",
                    target.agent,
                    self.timeout_seconds,
                )
                raise ConfigurationTimeout(
                    f"configuring {target.agent} did not finish within "
                    f"{self.timeout_seconds:.0f}s; the run was stopped"
                ) from None
            except asyncio.CancelledError:
                cancel.set()
                await self._wait_stopped(done)
                log.info("configuring %s cancelled; run stopped", target.agent)
                raise
            result = result_of(run, target, secrets, time.monotonic() - started)
            log.info(
                "configured %s: ok=%s changed=%d failed_task=%s in %.1fs",
                target.agent,
                result.ok,
                result.changed,
                result.failed_task,
                result.duration_seconds,
            )
            return result
        finally:
            # In a thread (it waits on processes and disks), and shielded: a second cancel
            # must not leave a run's secrets or processes behind.
            await asyncio.shield(
                asyncio.to_thread(clean_up, private, control, run_marker, self.artifacts_dir)
            )

    async def _wait_stopped(self, done: asyncio.Future[RunRecord]) -> None:
        # The runner notices the cancel flag within its pexpect timeout and kills the process
        # group; wait for that so the caller can rely on "stopped" when we return or raise.
        await asyncio.wait({done}, timeout=self.stop_grace_seconds)

    def _run_in_thread(
        self,
        kwargs: dict[str, Any],
        run: RunRecord,
        cancel: threading.Event,
        loop: asyncio.AbstractEventLoop,
        done: asyncio.Future[RunRecord],
    ) -> None:
        keep_events = self.artifacts_dir is not None

        def on_event(event: dict[str, Any]) -> bool:
            collect(run, event)
            return keep_events

        try:
            runner = ansible_runner.run(
                **kwargs, event_handler=on_event, cancel_callback=cancel.is_set
            )
            run.status = str(runner.status)
            run.rc = runner.rc
            run.output_tail = tail(Path(kwargs["artifact_dir"]) / kwargs["ident"] / "stdout")
        except Exception as exc:  # the runner failed to start: report it, never hang
            run.status = "error"
            run.error = f"{type(exc).__name__}: {exc}"
        # RuntimeError: the event loop is gone, so nobody waits for this run any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_resolve, done, run)


def _resolve(done: asyncio.Future[RunRecord], run: RunRecord) -> None:
    if not done.done():
        done.set_result(run)
