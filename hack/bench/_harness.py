"""What every benchmark starts and tears down for itself (not a benchmark: `make bench` skips
files whose name starts with `_`).

- `control_plane()`: a private etcd + kube-apiserver (`hack/envtest.sh up` with its run state in
  a temporary directory, on free ports), the CRDs from `crds/` applied and Established; stopped
  and removed on exit, also after an error, Ctrl-C or SIGTERM. Nothing is shared with
  `make demo`, the tests or another benchmark, and nothing is left behind.
- `test_cluster()`: the same, as the tests' `tests.kube.Cluster` (for benchmarks that reuse the
  tests' helpers).
- `sandbox_process()`: the simulator (`python -m aura_sandbox`, i.e. `aura sandbox`) as a
  child process; yields its ready line (URLs, tokens).
- `operator_process()`: `aura operator` against an in-process sandbox (`aura_sandbox.harness`),
  its log in a temporary file; stopped on exit.
- `machine()`: cores and load average, printed with every figure: other work on the machine
  skews latencies, and a reader must be able to tell.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# SIGTERM (a `kill`, a CI timeout) unwinds like Ctrl-C, so every context manager here still
# stops what it started: a killed benchmark leaves no apiserver, sandbox or operator behind.
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

REPO = Path(__file__).resolve().parents[2]
ENVTEST = REPO / "hack" / "envtest.sh"
SANDBOX_COMMAND = [sys.executable, "-m", "aura_sandbox"]
# The same command with uvloop's policy installed first, so its `asyncio.run` runs on uvloop.
SANDBOX_ON_UVLOOP = [
    sys.executable,
    "-c",
    "import asyncio, uvloop; asyncio.set_event_loop_policy(uvloop.EventLoopPolicy());"
    " from aura_sandbox.cli import command; command(prog_name='aura sandbox')",
]


class KubectlFailed(SystemExit):
    """A kubectl call failed; it ends a benchmark with its message unless the caller retries.
    Its own class so a retry never swallows the SystemExit of a SIGTERM."""


@dataclass(frozen=True)
class ControlPlane:
    kubeconfig: str
    run_dir: str = ""

    def pids(self) -> dict[str, int]:
        """{"etcd": pid, "kube-apiserver": pid} from `hack/envtest.sh`'s pid files."""
        found = {}
        for component in ("etcd", "kube-apiserver"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                text = (Path(self.run_dir) / f"{component}.pid").read_text()
                found[component] = int(text.split()[0])
        return found

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 120) -> str:
        """kubectl against this control plane; stdout, or KubectlFailed naming the failure."""
        proc = subprocess.run(
            ["kubectl", "--kubeconfig", self.kubeconfig, *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            raise KubectlFailed(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout

    def namespace(self, prefix: str = "bench") -> str:
        name = f"{prefix}-{secrets.token_hex(3)}"
        self.kubectl("create", "namespace", name)
        return name


def _envtest(command: str, run_dir: str) -> str:
    env = {**os.environ, "AURA_ENVTEST_DIR": run_dir}
    proc = subprocess.run(["bash", str(ENVTEST), command], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"hack/envtest.sh {command} failed:\n{proc.stderr[-4000:]}")
    return proc.stdout


@contextlib.contextmanager
def control_plane() -> Iterator[ControlPlane]:
    """A fresh control plane with the Aura CRDs installed; see the module docstring."""
    if shutil.which("kubectl") is None:
        raise SystemExit("kubectl is not on PATH: install it (README, 'The two commands')")
    run_dir = tempfile.mkdtemp(prefix="aura-bench-envtest-")
    try:
        line = _envtest("up", run_dir).strip().splitlines()[-1]
        cp = ControlPlane(kubeconfig=line.removeprefix("export KUBECONFIG="), run_dir=run_dir)
        cp.kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
        cp.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/agents.aura.dev")
        yield cp
    finally:
        with contextlib.suppress(SystemExit):
            _envtest("down", run_dir)
        shutil.rmtree(run_dir, ignore_errors=True)


@contextlib.contextmanager
def test_cluster() -> Iterator[Any]:
    """`control_plane()` as the tests' `tests.kube.Cluster`, for benchmarks built on the tests'
    helpers: private, with the CRDs, stopped and removed on exit like `control_plane()`."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from kubernetes import config
    from tests.kube import Cluster

    with control_plane() as cp:
        api = config.new_client_from_config(config_file=cp.kubeconfig)
        try:
            yield Cluster(kubeconfig=cp.kubeconfig, api=api, started_here=False)
        finally:
            api.close()


@contextlib.contextmanager
def sandbox_process(
    *args: str, cpu: int | None = None, uvloop: bool = False
) -> Iterator[dict[str, Any]]:
    """`python -m aura_sandbox --port 0 ARGS` as a child; yields its ready line, stops it on exit.
    `cpu` pins it to one core (`taskset`) when the machine has more than one. `uvloop` serves
    it on uvloop's event loop (the sandbox's own command uses asyncio's): for benchmarks where
    the sandbox only stands in for a remote API and its CPU would compete with what is
    measured."""
    command = SANDBOX_ON_UVLOOP if uvloop else SANDBOX_COMMAND
    cmd = [*command, "--port", "0", *args]
    if cpu is not None and shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"aura sandbox exited ({proc.wait()}) before it was ready")
        info = json.loads(line)
        info["pid"] = proc.pid
        yield info
    finally:
        stop(proc)


@contextlib.contextmanager
def operator_process(kubeconfig: str, sandbox: Any, namespace: str, label: str) -> Iterator[Path]:
    """`aura operator --namespace NAMESPACE` with the sandbox's credentials and its default
    intervals; yields the path of its log (kept for a reader), stops it on exit."""
    ready = sandbox.ready
    env = {
        **os.environ,
        "KUBECONFIG": kubeconfig,
        "HCLOUD_TOKEN": ready.hetzner_token,
        "HCLOUD_ENDPOINT": ready.hetzner_url,
        "TAILSCALE_OAUTH_CLIENT_ID": ready.tailscale_client_id,
        "TAILSCALE_OAUTH_CLIENT_SECRET": ready.tailscale_client_secret,
        "TAILSCALE_TAILNET": ready.tailscale_tailnet,
        "TAILSCALE_BASE_URL": ready.tailscale_url,
        "AURA_SANDBOX_URL": ready.admin_url,
    }
    cmd = [sys.executable, "-m", "aura", "operator", "--namespace", namespace,
           "--log-level", "INFO", "--log-format", "text"]  # fmt: skip
    log_path = Path(tempfile.gettempdir()) / f"aura-bench-{label}-{os.getpid()}.log"
    proc = subprocess.Popen(cmd, env=env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT)
    try:
        yield log_path
    finally:
        stop(proc, timeout=30)


def stop(proc: subprocess.Popen[Any], timeout: float = 10, sig: int = signal.SIGTERM) -> None:
    """`sig`, then SIGKILL if `proc` is still there after `timeout` seconds."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (Linux /proc); 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> str:
    """`2 cores, load average 1.9 1.2 0.8` (1, 5 and 15 minutes)."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, load average {load}"


def loaded() -> bool:
    """Whether other work competes for the CPU (1-minute load above half the cores)."""
    return os.getloadavg()[0] > (os.cpu_count() or 1) / 2
