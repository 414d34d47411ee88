"""Benchmark: N Agents through the real operator against the sandbox and a real apiserver.

    .venv/bin/python hack/bench/reconcile.py                 # 50 agents
    .venv/bin/python hack/bench/reconcile.py --agents 200

Starts a private control plane with the CRDs, the sandbox at a fast time scale and
`aura operator`, each as a subprocess (`_harness`; all stopped at the end); applies N Agents at
once and prints:

- wall time until every Agent is Running;
- Hetzner API calls per Agent provisioned (every /v1 request the sandbox served, divided by N);
- Hetzner API calls per hour per running Agent at steady state (measured over
  `--steady-seconds`, extrapolated to an hour);
- the operator's peak RSS (VmHWM);
- at steady state: apiserver writes per second (`_apiserver_writes`), the operator's CPU seconds
  per minute (`_cpu_seconds`) and its log lines per minute at the chosen `--log-level`;
- the time to the first pass of the last Agent touched (`_first_touch`: no Agent waits
  untouched while others wait on timers) and the log lines of expected waits (`_wait_lines`);
- the machine's cores and load average.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml
from _harness import ControlPlane, control_plane, machine, sandbox_process, stop

from aura.models import GROUP, VERSION


def _hetzner_calls(admin_url: str) -> int:
    counts = httpx.get(f"{admin_url}/requests", timeout=10).json()["requests"]
    return sum(v for k, v in counts.items() if " /v1/" in k)


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE")


def _apiserver_writes(cp: ControlPlane) -> int:
    """Write requests the apiserver has served since it started, from its own `/metrics`
    (`apiserver_request_total` with a write verb: every client, every resource but leases,
    which the apiserver renews for itself every 10 s)."""
    total = 0.0
    for line in cp.kubectl("get", "--raw", "/metrics").splitlines():
        if (
            line.startswith("apiserver_request_total{")
            and 'resource="leases"' not in line
            and any(f'verb="{verb}"' in line for verb in WRITE_VERBS)
        ):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _log_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


def _wait_lines(path: Path) -> int:
    """Log lines about expected waits: kopf's "failed temporarily: waiting: ..." records."""
    with path.open("rb") as f:
        return sum(1 for line in f if b"waiting:" in line and b"temporarily" in line)


def _observe(cp: ControlPlane, namespace: str, elapsed: float, touched: dict[str, float]) -> int:
    """One look at every Agent: records when each was first seen touched (it has conditions,
    i.e. a first pass ran) in `touched`; returns how many are Running."""
    items = json.loads(cp.kubectl("-n", namespace, "get", "agents", "-o", "json"))["items"]
    running = 0
    for a in items:
        status = a.get("status") or {}
        if status.get("conditions"):
            touched.setdefault(a["metadata"]["name"], elapsed)
        running += status.get("phase") == "Running"
    return running


def _print_scale_figures(
    agents: int,
    touched: dict[str, float],
    waits: int,
    writes: float,
    cpu: float,
    lines: float,
    level: str,
) -> None:
    last = max(touched.values(), default=float("nan"))
    print(f"last Agent's first pass after:           {last:.1f} s  ({len(touched)} touched)")
    print(f"'waiting' log lines while provisioning:  {waits}")
    print(f"apiserver writes/s (steady state):       {writes:.2f}")
    print(f"operator CPU s/min (steady state):       {cpu:.2f}  ({cpu / 60:.1%} of a core)")
    print(f"operator log lines/min (steady state):   {lines:.1f}  (log level {level})")


def _print_unfinished(agents: int, touched: dict[str, float], waits: int) -> None:
    print(f"Agents never touched:                    {agents - len(touched)}", file=sys.stderr)
    print(f"'waiting' log lines so far:              {waits}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--time-scale", type=float, default=0.02)
    parser.add_argument("--steady-seconds", type=float, default=30.0)
    parser.add_argument("--health-interval", type=float, default=10.0)
    parser.add_argument("--max-concurrent-provisions", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--log-level", default="INFO", help="the operator's log level (default: its default)"
    )
    args = parser.parse_args()

    print(f"machine at the start: {machine()}", flush=True)
    with (
        control_plane() as cp,
        sandbox_process("--time-scale", str(args.time_scale)) as sandbox,
    ):
        namespace = cp.namespace()
        env = {
            **os.environ,
            "KUBECONFIG": cp.kubeconfig,
            "HCLOUD_TOKEN": sandbox["hetzner_token"],
            "HCLOUD_ENDPOINT": sandbox["hetzner_url"],
            "TAILSCALE_OAUTH_CLIENT_ID": sandbox["tailscale_client_id"],
            "TAILSCALE_OAUTH_CLIENT_SECRET": sandbox["tailscale_client_secret"],
            "TAILSCALE_TAILNET": sandbox["tailscale_tailnet"],
            "TAILSCALE_BASE_URL": sandbox["tailscale_url"],
            "AURA_SANDBOX_URL": sandbox["admin_url"],
        }
        admin = sandbox["admin_url"]
        cmd = [
            sys.executable, "-m", "aura", "operator", "--namespace", namespace,
            "--log-level", args.log_level,
            "--poll-interval", "1", "--retry-backoff", "1",
            "--server-list-max-age", "1",
            "--health-interval", str(args.health_interval),
            "--max-concurrent-provisions", str(args.max_concurrent_provisions),
        ]  # fmt: skip
        log_path = Path(tempfile.gettempdir()) / f"aura-bench-operator-{os.getpid()}.log"
        with log_path.open("wb") as log:
            operator = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                time.sleep(2)
                docs = [
                    {
                        "apiVersion": f"{GROUP}/{VERSION}",
                        "kind": "Agent",
                        "metadata": {"name": f"bench-{i:04d}", "namespace": namespace},
                        "spec": {"desiredState": "running"},
                    }
                    for i in range(args.agents)
                ]
                calls_before = _hetzner_calls(admin)
                started = time.monotonic()
                cp.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
                running, touched = 0, dict[str, float]()
                while time.monotonic() - started < args.timeout:
                    running = _observe(cp, namespace, time.monotonic() - started, touched)
                    if running == args.agents:
                        break
                    time.sleep(max(0.5, args.agents / 1000))
                wall = time.monotonic() - started
                provision_calls = _hetzner_calls(admin) - calls_before
                if running != args.agents:
                    print(
                        f"only {running}/{args.agents} Running after {wall:.0f}s", file=sys.stderr
                    )
                    print(f"operator log: {log_path}", file=sys.stderr)
                    _print_unfinished(args.agents, touched, _wait_lines(log_path))
                    return 1
                waits = _wait_lines(log_path)
                steady_before = _hetzner_calls(admin)
                writes, cpu = _apiserver_writes(cp), _cpu_seconds(operator.pid)
                lines = _log_lines(log_path)
                time.sleep(args.steady_seconds)
                steady = _hetzner_calls(admin) - steady_before
                writes = (_apiserver_writes(cp) - writes) / args.steady_seconds
                cpu = (_cpu_seconds(operator.pid) - cpu) * 60 / args.steady_seconds
                lines = (_log_lines(log_path) - lines) * 60 / args.steady_seconds
                per_hour = steady * 3600 / args.steady_seconds / args.agents
                rss = _peak_rss_mib(operator.pid)
            finally:
                stop(operator, timeout=30)
    print(f"agents:                                  {args.agents}")
    print(f"time scale:                              {args.time_scale}")
    print(f"wall time to all Running:                {wall:.1f} s")
    print(f"Hetzner calls per agent provisioned:     {provision_calls / args.agents:.2f}")
    print(
        f"Hetzner calls/hour/agent (steady state): {per_hour:.2f}"
        f"  (health interval {args.health_interval:.0f} s)"
    )
    print(f"operator peak RSS:                       {rss:.0f} MiB")
    _print_scale_figures(args.agents, touched, waits, writes, cpu, lines, args.log_level)
    print(f"operator log:                            {log_path}")
    print(f"machine at the end:                      {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
