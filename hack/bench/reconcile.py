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


def _running(cp: ControlPlane, namespace: str) -> int:
    items = json.loads(cp.kubectl("-n", namespace, "get", "agents", "-o", "json"))["items"]
    return sum(1 for a in items if a.get("status", {}).get("phase") == "Running")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--time-scale", type=float, default=0.02)
    parser.add_argument("--steady-seconds", type=float, default=30.0)
    parser.add_argument("--health-interval", type=float, default=10.0)
    parser.add_argument("--max-concurrent-provisions", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=600.0)
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
            "--log-level", "WARNING",
            "--poll-interval", "1", "--retry-backoff", "1",
            "--server-list-max-age", "1",
            "--health-interval", str(args.health_interval),
            "--max-concurrent-provisions", str(args.max_concurrent_provisions),
            "--worker-limit", str(max(50, args.max_concurrent_provisions)),
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
                running = 0
                while time.monotonic() - started < args.timeout:
                    running = _running(cp, namespace)
                    if running == args.agents:
                        break
                    time.sleep(0.5)
                wall = time.monotonic() - started
                provision_calls = _hetzner_calls(admin) - calls_before
                if running != args.agents:
                    print(
                        f"only {running}/{args.agents} Running after {wall:.0f}s", file=sys.stderr
                    )
                    print(f"operator log: {log_path}", file=sys.stderr)
                    return 1
                steady_before = _hetzner_calls(admin)
                time.sleep(args.steady_seconds)
                steady = _hetzner_calls(admin) - steady_before
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
    print(f"operator log:                            {log_path}")
    print(f"machine at the end:                      {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
