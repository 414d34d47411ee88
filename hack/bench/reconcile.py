"""Benchmark: N Agents through the real operator against the sandbox and a real apiserver.

    .venv/bin/python hack/bench/reconcile.py                 # 50 agents
    .venv/bin/python hack/bench/reconcile.py --agents 200

Starts (or reuses) the local control plane, an in-process sandbox at a fast time scale and
`aura operator` as a child process; applies N Agents at once and prints:

- wall time until every Agent is Running;
- Hetzner API calls per Agent provisioned (every /v1 request the sandbox served, divided by N);
- Hetzner API calls per hour per running Agent at steady state (measured over
  `--steady-seconds`, extrapolated to an hour);
- the operator's peak RSS (VmHWM).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.kube import fresh_namespace, start_cluster  # noqa: E402

from aura.models import GROUP, PLURAL, VERSION  # noqa: E402
from aura_sandbox.harness import Sandbox  # noqa: E402


def _hetzner_calls(sandbox: Sandbox) -> int:
    return sum(v for k, v in sandbox.request_counts().items() if " /v1/" in k)


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--time-scale", type=float, default=0.02)
    parser.add_argument("--steady-seconds", type=float, default=30.0)
    parser.add_argument("--health-interval", type=float, default=10.0)
    parser.add_argument("--max-concurrent-provisions", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()

    cluster = start_cluster()
    namespace = next(fresh_namespace(cluster, "bench"))
    with Sandbox(time_scale=args.time_scale) as sandbox:
        env = {
            **os.environ,
            "KUBECONFIG": cluster.kubeconfig,
            "HCLOUD_TOKEN": sandbox.ready.hetzner_token,
            "HCLOUD_ENDPOINT": sandbox.ready.hetzner_url,
            "TAILSCALE_OAUTH_CLIENT_ID": sandbox.ready.tailscale_client_id,
            "TAILSCALE_OAUTH_CLIENT_SECRET": sandbox.ready.tailscale_client_secret,
            "TAILSCALE_TAILNET": sandbox.ready.tailscale_tailnet,
            "TAILSCALE_BASE_URL": sandbox.ready.tailscale_url,
            "AURA_SANDBOX_URL": sandbox.ready.admin_url,
        }
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
        log = log_path.open("wb")
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
            calls_before = _hetzner_calls(sandbox)
            started = time.monotonic()
            cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
            running = 0
            while time.monotonic() - started < args.timeout:
                items = cluster.custom.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL
                )["items"]
                running = sum(1 for a in items if a.get("status", {}).get("phase") == "Running")
                if running == args.agents:
                    break
                time.sleep(0.5)
            wall = time.monotonic() - started
            provision_calls = _hetzner_calls(sandbox) - calls_before
            if running != args.agents:
                print(f"only {running}/{args.agents} Running after {wall:.0f}s", file=sys.stderr)
                return 1
            steady_before = _hetzner_calls(sandbox)
            time.sleep(args.steady_seconds)
            steady = _hetzner_calls(sandbox) - steady_before
            per_hour = steady * 3600 / args.steady_seconds / args.agents
            rss = _peak_rss_mib(operator.pid)
        finally:
            operator.terminate()
            operator.wait(30)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
