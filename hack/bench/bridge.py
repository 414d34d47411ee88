#!/usr/bin/env python3
"""Benchmark of `aura bridge`: signed Stripe webhook events at a fixed rate, end to end.

    .venv/bin/python hack/bench/bridge.py [--rate 200] [--seconds 15] [--agents 50] [--no-reread]

Starts (or reuses) the local apiserver (`hack/envtest.sh up`), the sandbox (its Stripe API is
what the bridge re-reads subscriptions from) and `aura bridge`, each as a subprocess. Creates
`--agents` Agents through checkout events, then fires `--rate` events per second for
`--seconds` seconds on an open-loop schedule (a slow answer does not slow the sender down, so
queueing shows up in the latencies). Prints p50/p90/p99/max latency, achieved throughput and
status codes; exits 1 if any answer was not 200 or p99 is 50 ms or more.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import stripe

REPO = Path(__file__).resolve().parents[2]
SECRET = "whsec_bench_" + secrets.token_hex(16)
TOKEN = "bench-" + secrets.token_hex(8)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def event(type_: str, obj: dict[str, object]) -> dict[str, object]:
    return {
        "id": "evt_bench" + secrets.token_hex(10),
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "livemode": False,
        "type": type_,
        "data": {"object": obj},
        "request": {"id": None, "idempotency_key": None},
    }


async def post(client: httpx.AsyncClient, body: dict[str, object]) -> tuple[float, int]:
    payload = json.dumps(body)
    header = stripe.WebhookSignature.generate_signature_header(payload, SECRET)
    started = time.perf_counter()
    response = await client.post(
        "/v1/stripe/webhook", content=payload, headers={"Stripe-Signature": header}
    )
    return time.perf_counter() - started, response.status_code


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def run(args: argparse.Namespace, stripe_url: str, stripe_key: str, bridge: str) -> int:
    form = {"Authorization": f"Bearer {stripe_key}"}
    async with httpx.AsyncClient(base_url=stripe_url, headers=form) as sandbox:
        customer = (await sandbox.post("/v1/customers", data={"name": "bench"})).json()["id"]
        price = (
            await sandbox.post("/v1/prices", data={"currency": "eur", "unit_amount": "900"})
        ).json()["id"]
        subs = []
        for _ in range(args.agents):
            data = {"customer": customer, "items[0][price]": price}
            subs.append((await sandbox.post("/v1/subscriptions", data=data)).json()["id"])

    # Expire idle connections before uvicorn does (5 s), or a reused one may be reset.
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200, keepalive_expiry=3)
    async with httpx.AsyncClient(base_url=bridge, limits=limits, timeout=30) as client:
        for i, sub in enumerate(subs):
            obj = {
                "id": f"cs_bench{i}", "object": "checkout.session", "mode": "subscription",
                "customer": customer, "subscription": sub,
                "metadata": {"agent_name": f"bench-{i}"},
            }
            _, status = await post(client, event("checkout.session.completed", obj))
            assert status == 200, status
        # Warm-up (connections, caches), not measured.
        await asyncio.gather(*(post(client, event("invoice.paid", invoice(s))) for s in subs))

        total = int(args.rate * args.seconds)
        start = time.perf_counter()
        tasks = []
        for i in range(total):
            delay = start + i / args.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sub = random.choice(subs)
            body = (
                event("invoice.paid", invoice(sub))
                if i % 2
                else event(
                    "customer.subscription.updated",
                    {"id": sub, "object": "subscription", "customer": customer, "status": "active"},
                )
            )
            tasks.append(asyncio.create_task(post(client, body)))
        results = await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start

    latencies = [r[0] * 1000 for r in results]
    codes: dict[int, int] = {}
    for _, code in results:
        codes[code] = codes.get(code, 0) + 1
    p50, p90, p99 = (percentile(latencies, p) for p in (50, 90, 99))
    mode = "re-read from the sandbox's Stripe API" if args.reread else "event objects only"
    print(f"bridge bench: {total} events at {args.rate}/s to {args.agents} agents ({mode})")
    print(f"  latency ms: p50 {p50:.1f}  p90 {p90:.1f}  p99 {p99:.1f}  max {max(latencies):.1f}"
          f"  mean {statistics.mean(latencies):.1f}")
    print(f"  throughput: {total / elapsed:.1f} events/s over {elapsed:.1f}s")
    print(f"  status codes: {codes}")
    ok = codes == {200: total} and p99 < 50
    print("  result:", "PASS (p99 < 50 ms, all 200)" if ok else "FAIL")
    return 0 if ok else 1


def invoice(sub: str) -> dict[str, object]:
    return {
        "id": "in_bench" + secrets.token_hex(6), "object": "invoice",
        "parent": {"type": "subscription_details", "subscription_details": {"subscription": sub}},
    }


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bridge exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("bridge did not become ready")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--reread", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()

    up = subprocess.run(["bash", str(REPO / "hack/envtest.sh"), "up"], check=True,
                        capture_output=True, text=True)
    kubeconfig = up.stdout.strip().splitlines()[-1].removeprefix("export KUBECONFIG=")
    namespace = "bench-" + secrets.token_hex(3)
    subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "create", "namespace", namespace],
                   check=True, capture_output=True)
    aura = str(REPO / ".venv/bin/aura")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        sandbox = subprocess.Popen([aura, "sandbox"], stdout=subprocess.PIPE)
        procs.append(sandbox)
        assert sandbox.stdout is not None
        info = json.loads(sandbox.stdout.readline())
        port = free_port()
        env = {
            **os.environ,
            "KUBECONFIG": kubeconfig,
            "STRIPE_WEBHOOK_SECRET": SECRET,
            "AURA_API_TOKENS": TOKEN,
            "AURA_BRIDGE_NAMESPACE": namespace,
            "STRIPE_API_KEY": info["stripe_api_key"],
            "STRIPE_API_BASE": info["stripe_url"],
        }
        cmd = [aura, "bridge", "--host", "127.0.0.1", "--port", str(port)]
        if not args.reread:
            cmd.append("--no-reread")
        log = open(os.environ.get("AURA_BENCH_LOG", os.devnull), "wb")  # noqa: SIM115
        bridge = subprocess.Popen(cmd, env=env, stderr=log)
        procs.append(bridge)
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, bridge)
        return asyncio.run(run(args, info["stripe_url"], info["stripe_api_key"], url))
    finally:
        for proc in reversed(procs):  # the bridge first, then the sandbox it reads from
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    sys.exit(main())
