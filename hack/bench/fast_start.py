#!/usr/bin/env python3
"""Checkout to Running, side by side: cold start, golden image (and warm pool when available).

    .venv/bin/python hack/bench/fast_start.py [--agents 24] [--time-scale 1] [--modes cold,golden]

One run, one sandbox at `--time-scale` (1: the realistic timing model of
`aura_sandbox/clock.py`), one `aura bridge`, one control plane. Each mode has its own namespace
and its own `aura operator` (so its Hetzner calls are its own, read from its metrics):

- cold    today's path: a server from the base image, cloud-init installs Tailscale, the
          playbook installs Node.js and OpenClaw, then configures;
- golden  an AgentImage of the bridge's runtime version is built first (its build time and
          calls are reported apart); each Agent boots from it, so only its configuration runs;
- pool    an AgentImage and an AgentPool of `--pool-size` warm servers booted from it; the
          checkouts start once the pool is warm, and each new Agent takes a warm server.

Every checkout goes through the real path: a Checkout Session in the sandbox's Stripe, completed
by the sandbox's admin API, which signs and POSTs `checkout.session.completed` to the bridge,
which creates the Agent. The clock starts right before the completion and stops at the Agent's
`status.phaseSince` of phase Running. Modes run at once (cold starts while the image builds),
so the table is from one run on one machine. Prints p50/p90 checkout->Running, Hetzner calls
per Agent and, for the pool, its cost per month. Exits 1 if an Agent did not reach Running
within `--timeout`, or when a target is missed (golden p50 under half of cold; pool p90 < 30 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import stripe
from _harness import ControlPlane, control_plane, machine, sandbox_process, stop

from aura_demo.processes import free_port

OPERATOR_FLAGS = ["--log-level", "WARNING", "--poll-interval", "2", "--retry-backoff", "2",
                  "--server-list-max-age", "2", "--health-interval", "30",
                  "--checkpoint-poll-interval", "5", "--sweep-interval", "30",
                  "--max-concurrent-provisions", "100", "--worker-limit", "100"]  # fmt: skip


@dataclass
class Mode:
    name: str
    namespace: str
    metrics_port: int
    operator: subprocess.Popen[bytes] | None = None
    started: dict[str, float] = field(default_factory=dict)  # agent -> epoch seconds
    running: dict[str, float] = field(default_factory=dict)  # agent -> seconds to Running
    calls_before: float = 0.0
    calls: float = 0.0
    prep_seconds: float | None = None
    prep_calls: float = 0.0
    pool_cost: float | None = None
    steps: dict[str, list[float]] = field(default_factory=dict)  # step -> seconds per Agent


PHASES = ("Queued", "Provisioning", "Configuring", "Networking", "Starting", "Running")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def hetzner_calls(port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    pattern = re.compile(r'^aura_cloud_api_calls_total\{[^}]*api="hetzner"[^}]*\} ([0-9.e+]+)$')
    return sum(float(m.group(1)) for line in text.splitlines() if (m := pattern.match(line)))


def objects(cp: ControlPlane, namespace: str, kind: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(
        cp.kubectl("-n", namespace, "get", kind, "-o", "json")
    )["items"]
    return items


def phase_since(agent: dict[str, Any]) -> float:
    raw = agent.get("status", {}).get("phaseSince")
    return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp() if raw else time.time()


async def checkout(sc: stripe.StripeClient, admin: httpx.AsyncClient, mode: Mode, i: int) -> None:
    name = f"{mode.name}-{i:03d}"
    customer = await asyncio.to_thread(sc.v1.customers.create, params={"name": name})
    price = await asyncio.to_thread(
        sc.v1.prices.create,
        params={
            "currency": "eur",
            "unit_amount": 1900,
            "recurring": {"interval": "month"},
            "product_data": {"name": "Always-on agent"},
        },
    )
    session = await asyncio.to_thread(
        sc.v1.checkout.sessions.create,
        params={
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": price.id, "quantity": 1}],
            "metadata": {"agent_name": name, "agent_namespace": mode.namespace},
            "success_url": "https://bench.example/welcome",
        },
    )
    mode.started[name] = time.time()
    (await admin.post(f"/stripe/checkout/{session.id}/complete")).raise_for_status()


async def fire(sc: stripe.StripeClient, admin_url: str, mode: Mode, agents: int) -> None:
    """All checkouts of `mode` at once (a launch-day burst)."""
    mode.calls_before = hetzner_calls(mode.metrics_port)
    async with httpx.AsyncClient(base_url=admin_url, timeout=30) as admin:
        await asyncio.gather(*(checkout(sc, admin, mode, i) for i in range(agents)))


def watch(cp: ControlPlane, mode: Mode) -> bool:
    """Record newly Running Agents of `mode`; True when all it started are Running."""
    for agent in objects(cp, mode.namespace, "agents"):
        name = agent["metadata"]["name"]
        fresh = name in mode.started and name not in mode.running
        if fresh and agent.get("status", {}).get("phase") == "Running":
            mode.running[name] = phase_since(agent) - mode.started[name]
    done = bool(mode.started) and len(mode.running) == len(mode.started)
    if done and not mode.calls:
        mode.calls = hetzner_calls(mode.metrics_port) - mode.calls_before
        mode.steps = breakdown(cp, mode)
    return done


MILESTONES = ("TookPooledServer", "ServerCreated", "Configured")
"""Events inside a phase worth timing on their own (the bind, the create, the configuration)."""


def breakdown(cp: ControlPlane, mode: Mode) -> dict[str, list[float]]:
    """Where each Agent's time went, from its Events (`eventTime` to the microsecond): the
    checkout to the Agent's first phase (the webhook, the bridge, the operator's first
    pass), each phase until Running, and the milestone Events, as seconds since the checkout.
    """
    raw = json.loads(cp.kubectl("-n", mode.namespace, "get", "events.events.k8s.io", "-o", "json"))
    by_agent: dict[str, list[tuple[float, str]]] = {}
    for event in raw["items"]:
        name = (event.get("regarding") or {}).get("name", "")
        when = event.get("eventTime")
        if name in mode.running and when:
            at = datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp()
            by_agent.setdefault(name, []).append((at, event.get("reason", "")))
    steps: dict[str, list[float]] = {}
    for name, events in by_agent.items():
        start, previous, phase = mode.started[name], mode.started[name], "checkout"
        for at, reason in sorted(events):
            if reason in MILESTONES:
                steps.setdefault(f"  {reason} (since checkout)", []).append(at - start)
                continue
            if reason not in PHASES:
                continue
            steps.setdefault(f"{phase} -> {reason}", []).append(at - previous)
            previous, phase = at, reason
            if reason == "Running":
                break
    return steps


def agent_image(namespace: str, version: str) -> str:
    return json.dumps(
        {
            "apiVersion": "aura.dev/v1alpha1",
            "kind": "AgentImage",
            "metadata": {"name": "openclaw", "namespace": namespace},
            "spec": {"openclawVersion": version},
        }
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=24, help="checkouts per mode")
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--modes", default="cold,golden,pool", help="cold,golden,pool")
    parser.add_argument("--pool-size", type=int, default=0, help="pool min (default: --agents)")
    parser.add_argument("--version", default="2026.3.1", help="the bridge's runtime version")
    parser.add_argument("--timeout", type=float, default=3600.0)
    args = parser.parse_args()
    names = [m for m in args.modes.split(",") if m]
    print(f"machine at the start: {machine()}", flush=True)
    bridge_port = free_port()
    secret = "whsec_" + secrets.token_urlsafe(24)
    webhook = f"http://127.0.0.1:{bridge_port}/v1/stripe/webhook"
    logs = Path(tempfile.mkdtemp(prefix="aura-bench-fast-start-"))
    with (
        control_plane() as cp,
        sandbox_process(
            "--time-scale",
            str(args.time_scale),
            "--stripe-webhook-url",
            webhook,
            "--stripe-webhook-secret",
            secret,
        ) as sb,  # fmt: skip
    ):
        env = {
            **os.environ,
            "KUBECONFIG": cp.kubeconfig,
            "HCLOUD_TOKEN": sb["hetzner_token"],
            "HCLOUD_ENDPOINT": sb["hetzner_url"],
            "TAILSCALE_OAUTH_CLIENT_ID": sb["tailscale_client_id"],
            "TAILSCALE_OAUTH_CLIENT_SECRET": sb["tailscale_client_secret"],
            "TAILSCALE_TAILNET": sb["tailscale_tailnet"],
            "TAILSCALE_BASE_URL": sb["tailscale_url"],
            "AURA_SANDBOX_URL": sb["admin_url"],
        }
        cp.kubectl("wait", "--for=condition=Established", "--timeout=120s", "crd", "--all")
        modes = [Mode(n, cp.namespace(n), free_port()) for n in names]
        procs: list[subprocess.Popen[bytes]] = []
        try:
            bridge_env = {
                **env,
                "STRIPE_WEBHOOK_SECRET": secret,
                "STRIPE_API_KEY": sb["stripe_api_key"],
                "STRIPE_API_BASE": sb["stripe_url"],
                "AURA_API_TOKENS": secrets.token_urlsafe(24),
            }
            cmd = [sys.executable, "-m", "aura", "bridge", "--host", "127.0.0.1",
                   "--port", str(bridge_port), "--log-format", "text"]  # fmt: skip
            procs.append(
                subprocess.Popen(
                    cmd,
                    env=bridge_env,
                    stdout=(logs / "bridge.log").open("wb"),
                    stderr=subprocess.STDOUT,
                )
            )
            for mode in modes:
                cmd = [sys.executable, "-m", "aura", "operator", "--namespace", mode.namespace,
                       "--metrics-port", str(mode.metrics_port), *OPERATOR_FLAGS]  # fmt: skip
                out = (logs / f"operator-{mode.name}.log").open("wb")
                mode.operator = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
                procs.append(mode.operator)
            for mode in modes:  # each operator serves its metrics once it has started
                deadline = time.monotonic() + 300
                while True:
                    try:
                        hetzner_calls(mode.metrics_port)
                        break
                    except httpx.HTTPError:
                        if time.monotonic() > deadline:
                            raise SystemExit(
                                f"operator {mode.name} did not start: {logs}"
                            ) from None
                        time.sleep(0.5)
            return asyncio.run(run(cp, sb, modes, args, logs))
        finally:
            for proc in reversed(procs):
                stop(proc, timeout=30)


async def run(
    cp: ControlPlane, sb: dict[str, Any], modes: list[Mode], args: argparse.Namespace, logs: Path
) -> int:
    sc = stripe.StripeClient(sb["stripe_api_key"], base_addresses={"api": sb["stripe_url"]})
    began = time.monotonic()
    pending = {m.name: m for m in modes}
    for mode in modes:
        if mode.name in ("golden", "pool"):
            cp.kubectl("apply", "-f", "-", input=agent_image(mode.namespace, args.version))
            mode.prep_calls = hetzner_calls(mode.metrics_port)
        if mode.name == "pool":
            size = args.pool_size or args.agents
            cp.kubectl("apply", "-f", "-", input=agent_pool(mode.namespace, size))
    fired: set[str] = set()
    while pending:
        if time.monotonic() - began > args.timeout:
            for mode in pending.values():
                print(f"{mode.name}: {len(mode.running)}/{len(mode.started)} Running after "
                      f"{args.timeout:.0f}s; logs in {logs}", file=sys.stderr)  # fmt: skip
            return 1
        for mode in list(pending.values()):
            if mode.name not in fired and ready_to_fire(cp, mode, began):
                mode.prep_calls = hetzner_calls(mode.metrics_port) - mode.prep_calls
                fired.add(mode.name)
                await fire(sc, sb["admin_url"], mode, args.agents)
            elif mode.name in fired and watch(cp, mode):
                del pending[mode.name]
        await asyncio.sleep(1)
    report(modes, args)
    return verdict(modes)


def ready_to_fire(cp: ControlPlane, mode: Mode, began: float) -> bool:
    if mode.name == "cold":
        return True
    images = objects(cp, mode.namespace, "agentimages")
    if not images or images[0].get("status", {}).get("phase") != "Ready":
        return False
    if mode.name == "pool":
        (pool,) = objects(cp, mode.namespace, "agentpools")
        status = pool.get("status", {})
        if status.get("ready", 0) < pool["spec"]["min"]:
            return False
        mode.pool_cost = status.get("costPerMonth")
    mode.prep_seconds = time.monotonic() - began
    return True


def agent_pool(namespace: str, size: int) -> str:
    return json.dumps(
        {
            "apiVersion": "aura.dev/v1alpha1",
            "kind": "AgentPool",
            "metadata": {"name": "warm", "namespace": namespace},
            "spec": {"image": "openclaw", "min": size, "max": size},
        }
    )


def report(modes: list[Mode], args: argparse.Namespace) -> None:
    print(f"\nagents per mode: {args.agents}   time scale: {args.time_scale}")
    header = f"{'mode':8} {'p50 s':>8} {'p90 s':>8} {'max s':>8} {'Hetzner calls/Agent':>20}"
    print(header + f" {'prep (build, pool warm)':>26} {'pool EUR/month':>15}")
    for m in modes:
        times = list(m.running.values())
        prep = (
            f"{m.prep_seconds:.0f} s, {m.prep_calls:.0f} calls"
            if m.prep_seconds is not None
            else "-"
        )
        cost = f"{m.pool_cost:.2f}" if m.pool_cost is not None else "-"
        print(
            f"{m.name:8} {percentile(times, 50):8.1f} {percentile(times, 90):8.1f} "
            f"{max(times):8.1f} {m.calls / max(1, len(times)):20.1f} {prep:>22} {cost:>15}"
        )
    print("\nwhere the time went (p50 / p90 seconds per Agent, from its Events):")
    for m in modes:
        for step, values in m.steps.items():
            p50, p90 = percentile(values, 50), percentile(values, 90)
            print(f"{m.name:8} {step:44} {p50:8.1f} {p90:8.1f}")
    print(f"machine at the end: {machine()}")


def verdict(modes: list[Mode]) -> int:
    by = {m.name: percentile(list(m.running.values()), 50) for m in modes}
    p90 = {m.name: percentile(list(m.running.values()), 90) for m in modes}
    ok = True
    if "cold" in by and "golden" in by and not by["golden"] < by["cold"] / 2:
        print("target missed: golden image p50 is not under half of cold", file=sys.stderr)
        ok = False
    if "pool" in p90 and not p90["pool"] < 30:
        print("target missed: warm pool p90 is not under 30 s", file=sys.stderr)
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
