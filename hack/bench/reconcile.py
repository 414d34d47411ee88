"""Benchmark: N Agents through the real operator against the sandbox and a real apiserver.

    .venv/bin/python hack/bench/reconcile.py                    # 50 agents
    .venv/bin/python hack/bench/reconcile.py --agents 200
    .venv/bin/python hack/bench/reconcile.py --burst            # 1,000 at once, real limit
    .venv/bin/python hack/bench/reconcile.py --operator-src /tmp/old/operator   # old code

Starts a private control plane with the CRDs, the sandbox (servers at a fast time scale, the
Hetzner rate limit at its real size and speed: 3,600 tokens, one per second, unless told
otherwise) and `aura operator`, each as a subprocess (`_harness`; all stopped at the end);
creates N Agents at once (`kubectl create`, 100 to a call) and prints:

- wall time until every Agent is Running, and when the last Agent touched had its first pass
  (`_observe`: no Agent may wait untouched while others wait on timers);
- Hetzner and Tailscale API calls per Agent provisioned (every request the sandbox served);
- 429 answers the sandbox gave (its token bucket refused a request);
- at steady state (over `--steady-seconds`, after every Agent is Running): Hetzner and
  Tailscale calls per running Agent per hour, the operator's CPU seconds per minute, its log
  lines per minute at `--log-level`, and apiserver writes per second (POST/PUT/PATCH/DELETE
  from the apiserver's own metrics, leases left out: the apiserver renews its own), with the
  writes broken down by verb and resource so a needless one can be named;
- log lines of expected waits while provisioning (`_wait_lines`: kopf's "failed temporarily:
  waiting: ..." records, which item 3 wants gone);
- the operator's drift-sweep period and its cost per Agent-hour, when the operator reports it
  (`aura_drift_period_seconds`): a steady window shorter than the period can miss a sweep, so
  the expected cost is printed next to the measured one;
- the operator's peak RSS (VmHWM) and its RSS at the end of the steady window (VmRSS), and
  the machine's cores and load average.

`--burst` is issue 15 item 2: 1,000 Agents (unless `--agents`), default operator settings,
the real rate limit; it also prints the Queued messages seen (position and estimate) and
fails when any 429 was answered. `--operator-src DIR` runs the operator from another
checkout's `operator/` directory (a before/after comparison on the same machine; the
caller's PYTHONPATH is kept after it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import yaml
from _harness import ControlPlane, KubectlFailed, control_plane, machine, sandbox_process, stop

from aura.models import GROUP, VERSION

_WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE")
_METRIC_LINE = re.compile(r"^apiserver_request_total\{([^}]*)\}\s+([0-9.e+]+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def _sandbox_calls(admin_url: str) -> tuple[int, int]:
    """(Hetzner, Tailscale) requests the sandbox served so far."""
    counts = httpx.get(f"{admin_url}/requests", timeout=10).json()["requests"]
    hetzner = sum(v for k, v in counts.items() if " /v1/" in k)
    tailscale = sum(v for k, v in counts.items() if " /api/v2/" in k)
    return hetzner, tailscale


def _rate_limited(admin_url: str) -> int:
    """429s the sandbox's Hetzner token bucket answered (0 if the sandbox does not say)."""
    return int(httpx.get(f"{admin_url}/world", timeout=10).json().get("rate_limited", 0))


def _rss_mib(pid: int, field: str = "VmHWM") -> float:
    """The process's peak (VmHWM) or current (VmRSS) resident set, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _apiserver_writes(cp: ControlPlane) -> Counter[str]:
    """Write requests the apiserver has served so far (`apiserver_request_total` with a write
    verb), keyed "VERB resource[/subresource]"; leases are left out (the apiserver renews its
    own every 10 s, whoever else runs)."""
    writes: Counter[str] = Counter()
    for line in cp.kubectl("get", "--raw", "/metrics").splitlines():
        match = _METRIC_LINE.match(line)
        if not match:
            continue
        labels = dict(_LABEL.findall(match.group(1)))
        if labels.get("verb") in _WRITE_VERBS and labels.get("resource") != "leases":
            sub = labels.get("subresource")
            key = f"{labels['verb']} {labels.get('resource', '?')}" + (f"/{sub}" if sub else "")
            writes[key] += float(match.group(2))
    return writes


def _log_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


def _wait_lines(path: Path) -> int:
    """Log lines about expected waits: kopf's "failed temporarily: waiting: ..." records."""
    with path.open("rb") as f:
        return sum(1 for line in f if b"waiting:" in line and b"temporarily" in line)


def _observe(
    cp: ControlPlane, namespace: str, elapsed: float, touched: dict[str, float]
) -> list[dict[str, Any]]:
    """Every Agent now; records in `touched` when each was first seen with conditions (its
    first pass ran). Empty when the list failed: a loaded apiserver times lists out while its
    watch cache catches up, and the next look will do."""
    try:
        items: list[dict[str, Any]] = json.loads(
            cp.kubectl("-n", namespace, "get", "agents", "-o", "json", timeout=600)
        )["items"]
    except KubectlFailed as exc:
        print(f"  (list failed, looking again: {str(exc)[:120]})", file=sys.stderr, flush=True)
        return []
    for item in items:
        if (item.get("status") or {}).get("conditions"):
            touched.setdefault(item["metadata"]["name"], elapsed)
    return items


def _queued_messages(items: list[dict[str, Any]]) -> list[str]:
    """The messages of Agents whose ServerReady condition says Queued."""
    out = []
    for item in items:
        for c in item.get("status", {}).get("conditions", []):
            if c.get("type") == "ServerReady" and c.get("reason") == "Queued":
                out.append(f"{item['metadata']['name']}: {c.get('message', '')}")
    return out


def _body_sizes(items: list[dict[str, Any]]) -> dict[str, float]:
    """Mean JSON bytes per Agent, whole and by part: kopf keeps each Agent's latest body in
    memory for its timer, so this is what the operator holds per Agent before Python's
    overhead."""
    parts: Counter[str] = Counter()
    for item in items:
        meta = item.get("metadata", {})
        parts["whole"] += len(json.dumps(item))
        parts["managedFields"] += len(json.dumps(meta.get("managedFields", [])))
        parts["annotations"] += len(json.dumps(meta.get("annotations", {})))
        parts["status"] += len(json.dumps(item.get("status", {})))
    return {k: v / max(1, len(items)) for k, v in parts.items()}


def _drift_metrics(port: int) -> dict[str, float]:
    """`aura_drift_*` gauges from the operator's /metrics (empty when it has none)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5, trust_env=False).text
    except httpx.HTTPError:
        return {}
    out = {}
    for line in text.splitlines():
        if line.startswith("aura_drift_"):
            name, _, value = line.partition(" ")
            out[name] = float(value)
    return out


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=None, help="default 50; 1000 with --burst")
    parser.add_argument("--burst", action="store_true", help="issue 15 item 2 (see above)")
    parser.add_argument("--time-scale", type=float, default=0.02)
    parser.add_argument("--steady-seconds", type=float, default=120.0)
    parser.add_argument("--health-interval", type=float, default=30.0)
    parser.add_argument("--rate-limit", type=int, default=3600, help="sandbox bucket size")
    parser.add_argument("--rate-limit-refill", type=float, default=1.0, help="tokens/second")
    parser.add_argument("--max-concurrent-provisions", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--operator-src", help="run the operator from this operator/ directory")
    parser.add_argument("--log-level", default="INFO", help="the operator's (INFO: its default)")
    args = parser.parse_args()
    agents = args.agents if args.agents is not None else (1000 if args.burst else 50)

    print(f"machine at the start: {machine()}", flush=True)
    with (
        control_plane() as cp,
        sandbox_process(
            "--time-scale",
            str(args.time_scale),
            "--rate-limit",
            str(args.rate_limit),
            "--rate-limit-refill",
            str(args.rate_limit_refill),
        ) as sandbox,
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
        if args.operator_src:
            paths = [str(Path(args.operator_src).resolve()), os.environ.get("PYTHONPATH", "")]
            env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        admin = sandbox["admin_url"]
        metrics_port = _free_port()
        cmd = [
            sys.executable, "-m", "aura", "operator", "--namespace", namespace,
            "--log-level", args.log_level, "--metrics-port", str(metrics_port),
            "--poll-interval", "1", "--retry-backoff", "1",
            "--health-interval", str(args.health_interval),
        ]  # fmt: skip
        if args.max_concurrent_provisions is not None:
            cmd += ["--max-concurrent-provisions", str(args.max_concurrent_provisions)]
        log_path = Path(tempfile.gettempdir()) / f"aura-bench-operator-{os.getpid()}.log"
        queued_seen: list[str] = []
        touched: dict[str, float] = {}
        with log_path.open("wb") as log:
            operator = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                time.sleep(3)
                docs = [
                    {
                        "apiVersion": f"{GROUP}/{VERSION}",
                        "kind": "Agent",
                        "metadata": {"name": f"bench-{i:04d}", "namespace": namespace},
                        "spec": {"desiredState": "running"},
                    }
                    for i in range(agents)
                ]
                h0, t0 = _sandbox_calls(admin)
                started = time.monotonic()
                for first in range(0, agents, 100):  # a loaded apiserver takes its time
                    batch = yaml.safe_dump_all(docs[first : first + 100])
                    cp.kubectl("create", "-f", "-", input=batch, timeout=600)
                running = 0
                while time.monotonic() - started < args.timeout:
                    items = _observe(cp, namespace, time.monotonic() - started, touched)
                    running = sum(1 for a in items if a.get("status", {}).get("phase") == "Running")
                    if len(queued_seen) < 6:
                        queued_seen += _queued_messages(items)[: 6 - len(queued_seen)]
                    if running == agents:
                        break
                    time.sleep(max(2.0, agents / 200))  # kubectl parses the whole fleet
                wall = time.monotonic() - started
                h1, t1 = _sandbox_calls(admin)
                waits = _wait_lines(log_path)
                if running != agents:
                    print(f"only {running}/{agents} Running after {wall:.0f}s", file=sys.stderr)
                    print(f"Agents never touched: {agents - len(touched)}", file=sys.stderr)
                    print(f"'waiting' log lines so far: {waits}", file=sys.stderr)
                    print(f"operator log: {log_path}", file=sys.stderr)
                    return 1
                print(f"all {agents} Running after {wall:.0f} s; measuring the steady state",
                      flush=True)  # fmt: skip
                time.sleep(min(10.0, args.health_interval))  # let the last passes settle
                h2, t2 = _sandbox_calls(admin)
                cpu0, writes0, w0 = _cpu_seconds(operator.pid), _apiserver_writes(cp), time.time()
                lines0 = _log_lines(log_path)
                time.sleep(args.steady_seconds)
                h3, t3 = _sandbox_calls(admin)
                cpu1, writes1, w1 = _cpu_seconds(operator.pid), _apiserver_writes(cp), time.time()
                lines1 = _log_lines(log_path)
                window = w1 - w0
                rss, rss_now = _rss_mib(operator.pid), _rss_mib(operator.pid, "VmRSS")
                drift = _drift_metrics(metrics_port)
                refused = _rate_limited(admin)
                every = cp.kubectl(
                    "-n", namespace, "get", "agents", "-o", "json", "--show-managed-fields",
                    timeout=600,
                )  # fmt: skip
                sizes = _body_sizes(json.loads(every)["items"])
            finally:
                stop(operator, timeout=30)
    per_hour = 3600 / window / agents
    last_touch = max(touched.values(), default=float("nan"))
    writes = writes1 - writes0
    cpu = (cpu1 - cpu0) * 60 / window
    print(f"agents:                                   {agents}")
    print(f"operator code:                            {args.operator_src or 'this tree'}")
    print(f"time scale / rate limit:                  {args.time_scale} / "
          f"{args.rate_limit} tokens, {args.rate_limit_refill}/s")  # fmt: skip
    print(f"wall time to all Running:                 {wall:.1f} s")
    print(f"last Agent's first pass after:            {last_touch:.1f} s ({len(touched)} touched)")
    print(f"Hetzner calls per agent provisioned:      {(h1 - h0) / agents:.2f}")
    print(f"Tailscale calls per agent provisioned:    {(t1 - t0) / agents:.2f}")
    print(f"429s answered by the sandbox:             {refused}")
    print(f"'waiting' log lines while provisioning:   {waits}")
    print(f"steady window:                            {window:.0f} s "
          f"(health interval {args.health_interval:.0f} s)")  # fmt: skip
    print(f"Hetzner calls/agent-hour (steady, seen):  {(h3 - h2) * per_hour:.3f}")
    if "aura_drift_period_seconds" in drift:
        period = drift["aura_drift_period_seconds"]
        pages = drift.get("aura_drift_pages", 1.0)
        print(
            f"  drift sweep: every {period:.0f} s, {pages:.0f} page(s): "
            f"{pages * 3600 / period / agents:.3f} calls/agent-hour expected"
        )
    print(f"Tailscale calls/agent-hour (steady):      {(t3 - t2) * per_hour:.3f}")
    print(f"operator CPU s/min (steady):              {cpu:.2f} ({cpu / 60:.1%} of a core)")
    print(f"operator log lines/min (steady):          {(lines1 - lines0) * 60 / window:.1f} "
          f"(log level {args.log_level})")  # fmt: skip
    print(f"apiserver writes/s (steady, no leases):   {writes.total() / window:.3f}")
    for key, count in writes.most_common(5):
        print(f"  {key}: {count / window:.3f}/s")
    print(f"operator RSS peak / at the end:           {rss:.0f} / {rss_now:.0f} MiB")
    print(
        f"Agent body, mean JSON bytes:              {sizes.get('whole', 0):.0f} ("
        + ", ".join(f"{k} {v:.0f}" for k, v in sizes.items() if k != "whole")
        + ")"
    )
    for line in queued_seen:
        print(f"  Queued: {line}")
    print(f"operator log:                             {log_path}")
    print(f"machine at the end:                       {machine()}")
    if args.burst and refused:
        print(f"burst FAILED: {refused} requests were answered 429", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
