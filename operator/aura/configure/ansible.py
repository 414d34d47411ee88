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
secrets `runtime_env` (target.runtime_env without `TS_AUTHKEY`) and
`network_tailscale_authkey` (`target.runtime_env["TS_AUTHKEY"]`, never written to `.env`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ansible_runner

from aura.configure.base import ConfigResult, ConfigTarget, ConfigurationTimeout

__all__ = [
    "DEFAULT_ANSIBLE_DIR",
    "TAILSCALE_AUTHKEY_ENV",
    "AnsibleConfigurator",
    "default_ansible_dir",
]

log = logging.getLogger(__name__)

#: The key in `ConfigTarget.runtime_env` that carries the tailnet auth key. It is passed to
#: the playbook as `network_tailscale_authkey` and is not written to the agent's `.env`.
TAILSCALE_AUTHKEY_ENV = "TS_AUTHKEY"

#: `ansible/` of the source tree this package was loaded from (operator/aura/configure/ ->
#: the repository root). An installed wheel has no such directory: set AURA_ANSIBLE_DIR.
DEFAULT_ANSIBLE_DIR = Path(__file__).resolve().parents[3] / "ansible"

#: Environment variable that tags every process of one run (see _kill_run_processes).
RUN_MARKER_ENV = "AURA_ANSIBLE_RUN"

MESSAGE_LIMIT = 1000
# ssh's own words when the host presents a key other than the pinned one.
_FINGERPRINT = re.compile(r"fingerprint for the (\S+) key sent by the remote host is\s+(\S+?)\.?\s")
_REDACTED = "***"


def default_ansible_dir() -> Path:
    """`$AURA_ANSIBLE_DIR` if set, else the repository's `ansible/` directory."""
    configured = os.environ.get("AURA_ANSIBLE_DIR")
    return Path(configured) if configured else DEFAULT_ANSIBLE_DIR


@dataclass
class _Run:
    """What one run collects from ansible-runner's events (written by the runner thread)."""

    failed_task: str | None = None
    failed_message: str = ""
    unreachable: bool = False
    changed: int = 0
    status: str = "unstarted"
    rc: int | None = None
    output_tail: str = ""
    error: str = ""


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
        self.ansible_playbook = ansible_playbook or _find_ansible_playbook()

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
        control = Path(tempfile.mkdtemp(prefix="aura-cp-", dir=_short_tmp()))
        run_marker = uuid.uuid4().hex
        secrets = _secret_values(target)
        cancel = threading.Event()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[_Run] = loop.create_future()
        try:
            kwargs = self._prepare(private, control, run_marker, target)
            run = _Run()
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
            result = _result(run, target, secrets, time.monotonic() - started)
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
                asyncio.to_thread(_clean_up, private, control, run_marker, self.artifacts_dir)
            )

    async def _wait_stopped(self, done: asyncio.Future[_Run]) -> None:
        # The runner notices the cancel flag within its pexpect timeout and kills the process
        # group; wait for that so the caller can rely on "stopped" when we return or raise.
        await asyncio.wait({done}, timeout=self.stop_grace_seconds)

    def _prepare(
        self, private: Path, control: Path, run_marker: str, target: ConfigTarget
    ) -> dict[str, Any]:
        """Write the run's private files; return the ansible_runner.run() keyword arguments."""
        key = private / "id_ssh"
        _write_private(key, target.ssh_private_key.rstrip("\n") + "\n")
        known_hosts = private / "known_hosts"
        _write_private(known_hosts, _known_hosts_line(target) + "\n")
        secret_vars = private / "secret-vars.json"
        env = dict(target.runtime_env)
        authkey = env.pop(TAILSCALE_AUTHKEY_ENV, "")
        _write_private(
            secret_vars,
            json.dumps({"runtime_env": env, "network_tailscale_authkey": authkey}),
        )
        for sub in ("tmp", "home"):
            (private / sub).mkdir(mode=0o700)

        ssh_args = " ".join(
            [
                "-o StrictHostKeyChecking=yes",
                f"-o UserKnownHostsFile={known_hosts}",
                "-o GlobalKnownHostsFile=/dev/null",
                "-o UpdateHostKeys=no",
                "-o IdentitiesOnly=yes",
                "-o IdentityAgent=none",
                "-o BatchMode=yes",
                "-o PasswordAuthentication=no",
                "-o ConnectTimeout=30",
                "-o ServerAliveInterval=15",
                "-o ServerAliveCountMax=4",
            ]
        )
        alias = target.agent.replace("/", "-")
        inventory = {
            "aura_agents": {
                "hosts": {
                    alias: {
                        "ansible_host": target.host,
                        "ansible_port": target.port,
                        "ansible_user": target.user,
                        "ansible_ssh_private_key_file": str(key),
                        "ansible_ssh_common_args": ssh_args,
                        "ansible_host_key_checking": True,
                    }
                }
            }
        }
        extravars: dict[str, object] = {
            "runtime_gateway_port": target.gateway_port,
            "runtime_settings": dict(target.settings),
        }
        if target.openclaw_version:
            extravars["runtime_openclaw_version"] = target.openclaw_version
        extravars.update(target.extra_vars)
        # The secrets file is the only source of these; never let extra_vars shadow it.
        extravars.pop("runtime_env", None)
        extravars.pop("network_tailscale_authkey", None)

        envvars = {
            # Every process of the run inherits this marker, including ansible's workers,
            # which start their own sessions and so escape the runner's process-group kill.
            RUN_MARKER_ENV: run_marker,
            # ansible-runner turns host key checking off unless this is set explicitly.
            "ANSIBLE_HOST_KEY_CHECKING": "True",
            # One SSH connection per run, multiplexed: the firewall task closes public SSH
            # for new connections while this one stays established. Masters are stopped in
            # _stop_ssh_masters; ControlPersist bounds them if this process dies first.
            "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=60s",
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control),
            "ANSIBLE_LOCAL_TEMP": str(private / "tmp"),
            "ANSIBLE_HOME": str(private / "home"),
            # One SSH round trip per task instead of put + chmod + run + remove.
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_DISPLAY_ARGS_TO_STDOUT": "False",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
        }
        config = self.ansible_dir / "ansible.cfg"
        if config.is_file():
            envvars["ANSIBLE_CONFIG"] = str(config)
        # ansible-runner runs `ansible-playbook` from PATH; put the chosen one first.
        bin_dir = str(Path(self.ansible_playbook).parent)
        envvars["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", os.defpath)])
        envvars.update(self.extra_env)

        run_id = f"{alias}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        artifacts = self.artifacts_dir if self.artifacts_dir is not None else private / "artifacts"
        artifacts.mkdir(mode=0o700, parents=True, exist_ok=True)
        return {
            "private_data_dir": str(private),
            "project_dir": str(self.ansible_dir),
            "playbook": self.playbook,
            "inventory": inventory,
            "extravars": extravars,
            "envvars": envvars,
            "cmdline": f"-e @{secret_vars}",
            "artifact_dir": str(artifacts),
            "ident": run_id,
            "rotate_artifacts": 0,
            "quiet": True,
            # How often the runner checks the cancel flag (default 5 s).
            "settings": {"pexpect_timeout": 0.5},
        }

    def _run_in_thread(
        self,
        kwargs: dict[str, Any],
        run: _Run,
        cancel: threading.Event,
        loop: asyncio.AbstractEventLoop,
        done: asyncio.Future[_Run],
    ) -> None:
        keep_events = self.artifacts_dir is not None

        def on_event(event: dict[str, Any]) -> bool:
            _collect(run, event)
            return keep_events

        try:
            runner = ansible_runner.run(
                **kwargs, event_handler=on_event, cancel_callback=cancel.is_set
            )
            run.status = str(runner.status)
            run.rc = runner.rc
            run.output_tail = _tail(Path(kwargs["artifact_dir"]) / kwargs["ident"] / "stdout")
        except Exception as exc:  # the runner failed to start: report it, never hang
            run.status = "error"
            run.error = f"{type(exc).__name__}: {exc}"
        # RuntimeError: the event loop is gone, so nobody waits for this run any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_resolve, done, run)


def _resolve(done: asyncio.Future[_Run], run: _Run) -> None:
    if not done.done():
        done.set_result(run)


def _collect(run: _Run, event: Mapping[str, Any]) -> None:
    """Fold one ansible-runner event into `run`."""
    name = event.get("event")
    data = event.get("event_data") or {}
    if name in ("runner_on_failed", "runner_on_unreachable"):
        if data.get("ignore_errors"):
            return
        if run.failed_task is None:
            run.failed_task = str(data.get("task") or "")
            run.failed_message = _module_message(data.get("res") or {})
            run.unreachable = name == "runner_on_unreachable"
    elif name == "playbook_on_stats":
        changed = data.get("changed") or {}
        run.changed = sum(int(v) for v in changed.values())


def _module_message(res: Mapping[str, Any]) -> str:
    """The human part of a failed module result: msg, plus stderr for commands."""
    parts = [str(res.get("msg") or "").strip()]
    # Tools put the reason on an "Error" line, often followed by context and ^^^ markers.
    lines = [line.strip() for line in str(res.get("stderr") or "").splitlines()]
    lines = [line for line in lines if line.strip("^~ ")]
    if lines:
        errors = [line for line in lines if "error" in line.lower()]
        parts.append((errors or lines)[-1 if not errors else 0])
    return ": ".join(p for p in parts if p)


def _result(run: _Run, target: ConfigTarget, secrets: Iterable[str], took: float) -> ConfigResult:
    if run.status == "successful":
        return ConfigResult(ok=True, changed=run.changed, duration_seconds=took)
    if run.status == "timeout":  # only if a job_timeout sneaks in through ansible.cfg
        raise ConfigurationTimeout(f"configuring {target.agent} timed out; the run was stopped")
    if run.failed_task is not None:
        message = run.failed_message or "the task failed without a message"
        if run.unreachable:
            message = _unreachable_message(target, message)
    elif run.error:
        message = f"ansible-runner could not run the playbook: {run.error}"
    else:
        message = f"ansible-playbook exited with {run.rc} ({run.status}): {run.output_tail}"
    return ConfigResult(
        ok=False,
        failed_task=run.failed_task,
        message=_truncate(_redact(message, secrets)),
        changed=run.changed,
        duration_seconds=took,
    )


def _unreachable_message(target: ConfigTarget, message: str) -> str:
    where = f"{target.host}:{target.port}"
    if "Host key verification failed" in message or "IDENTIFICATION HAS CHANGED" in message:
        seen = _FINGERPRINT.search(message)
        presented = f" (it presented {seen.group(1)} key {seen.group(2)})" if seen else ""
        return (
            f"SSH host key of {where} does not match the pinned host key of server "
            f"{target.server_id}{presented}; refusing to connect"
        )
    return f"cannot reach {where} over SSH: {message}"


def _secret_values(target: ConfigTarget) -> list[str]:
    values = [v for v in target.runtime_env.values() if len(v) >= 4]
    if target.ssh_private_key.strip():
        values.append(target.ssh_private_key.strip())
    # Longest first, so a secret that contains another is replaced whole.
    return sorted(values, key=len, reverse=True)


def _redact(text: str, secrets: Iterable[str]) -> str:
    for value in secrets:
        text = text.replace(value, _REDACTED)
    return text


def _truncate(text: str, limit: int = MESSAGE_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _short_tmp() -> str | None:
    """The system temp dir if a control socket path (dir + 50 bytes) fits in it, else /tmp."""
    return None if len(tempfile.gettempdir()) <= 40 else "/tmp"


def _find_ansible_playbook() -> str:
    # Same environment as ansible_runner first: a virtualenv is often not on PATH.
    sibling = Path(sys.executable).parent / "ansible-playbook"
    if sibling.is_file():
        return str(sibling)
    return shutil.which("ansible-playbook") or str(sibling)


def _known_hosts_line(target: ConfigTarget) -> str:
    key_type, key = target.ssh_host_public_key.split()[:2]
    host = target.host if target.port == 22 else f"[{target.host}]:{target.port}"
    return f"{host} {key_type} {key}"


def _write_private(path: Path, content: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(content)


def _clean_up(private: Path, control: Path, run_marker: str, artifacts: Path | None) -> None:
    """Stop everything a run left behind and delete its private files."""
    _stop_ssh_masters(control)
    _kill_run_processes(run_marker)
    if artifacts is not None:
        _scrub_artifacts(artifacts)
    shutil.rmtree(private, ignore_errors=True)
    shutil.rmtree(control, ignore_errors=True)


def _stop_ssh_masters(control_dir: Path) -> None:
    """Stop the SSH connection masters of a run (they outlive ansible-playbook by design)."""
    if not control_dir.is_dir():
        return
    for sock in control_dir.iterdir():
        subprocess.run(
            ["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "aura-control-master"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
            check=False,
        )


def _kill_run_processes(run_marker: str) -> None:
    """SIGKILL every process left over from a run, found by its environment marker.

    ansible-runner kills ansible-playbook's process group on cancel or timeout, but ansible's
    worker processes run in sessions of their own (and SSH masters daemonize), so they would
    keep running the current task. Linux only (/proc); a no-op where it is missing.
    """
    needle = f"{RUN_MARKER_ENV}={run_marker}".encode() + b"\0"
    for _ in range(5):  # a dying parent may still fork; look again until none is left
        found = False
        for entry in Path("/proc").glob("[0-9]*"):
            try:
                if needle not in (entry / "environ").read_bytes():
                    continue
                os.kill(int(entry.name), signal.SIGKILL)
                found = True
            except (OSError, ValueError):  # gone already, or not ours to read
                continue
        if not found:
            return
        time.sleep(0.05)


def _scrub_artifacts(artifacts_dir: Path) -> None:
    """Drop the environment ansible-runner records next to the command line it ran."""
    for command in artifacts_dir.glob("*/command"):
        try:
            data = json.loads(command.read_text())
            data.pop("env", None)
            command.write_text(json.dumps(data))
        except (OSError, ValueError):
            command.unlink(missing_ok=True)
