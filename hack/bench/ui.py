#!/usr/bin/env python3
"""Benchmark of the embeddable status view: its page weight, and status write -> browser.

    .venv/bin/python hack/bench/ui.py [--changes 100]

Starts a private control plane with the CRDs (`_harness.control_plane`, stopped at the end)
and `aura bridge` as a subprocess, creates one Agent for one customer, and opens a page on
another origin embedding the view (one `<script>` tag and a `customer:read` token) in Debian's
headless Chromium (Playwright with `/usr/bin/chromium`; no browser is downloaded).

- Page weight: bytes on the wire (headers included, as Chromium's network stack counts them,
  gzip where the bridge compresses) of the view's own files and of the data it loads, by URL;
  the open event stream is counted up to the moment of measuring.
- Latency: `--changes` phase changes, each written to the Agent's status (what the operator
  does) after the previous one showed; the time runs from just before the status PATCH to the
  moment a MutationObserver in the page sees the new phase in the DOM (same machine clock).
  Prints p50/p90/p99/max.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import os
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from _harness import control_plane, machine
from kubernetes import client, config
from playwright.async_api import async_playwright

REPO = Path(__file__).resolve().parents[2]
KEY = "bench:" + secrets.token_hex(32)
TOKEN = "bench-" + secrets.token_hex(8)
CUSTOMER = "cus_bench" + secrets.token_hex(4)
PHASES = ["Provisioning", "Configuring", "Networking", "Running"]
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OBSERVER = """() => {
  window.__seen = [];
  new MutationObserver(() => {
    const a = document.querySelector("article.aura-agent");
    const phase = a && a.getAttribute("data-phase");
    const last = window.__seen[window.__seen.length - 1];
    if (phase && (!last || last.phase !== phase))
      window.__seen.push({phase, t: performance.timeOrigin + performance.now()});
  }).observe(document.body, {subtree: true, childList: true, attributes: true});
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def host_page(bridge: str, token: str) -> str:
    """Serve a page embedding the view on its own origin; returns its URL."""
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>bench</title></head>'
        f'<body><script src="{bridge}/ui/embed.js" data-token="{token}" async></script></body>'
        "</html>"
    ).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/"


def write_phase(custom: client.CustomObjectsApi, namespace: str, phase: str) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    custom.patch_namespaced_custom_object_status(
        "aura.dev",
        "v1alpha1",
        namespace,
        "agents",
        "bench-ui",
        {"status": {"phase": phase, "phaseSince": stamp}},
    )


async def run(args: argparse.Namespace, bridge: str, namespace: str) -> int:
    custom = client.CustomObjectsApi()
    token = httpx.post(  # noqa: ASYNC210 (once, before the browser starts)
        f"{bridge}/v1/tokens",
        params={"customer": CUSTOMER, "ttl": 3600},
        headers={"Authorization": f"Bearer {TOKEN}"},
    ).json()["token"]
    page_url = host_page(bridge, token)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path="/usr/bin/chromium", args=FLAGS, headless=True
        )
        page = await browser.new_page()
        cdp = await page.context.new_cdp_session(page)
        await cdp.send("Network.enable")
        urls: dict[str, str] = {}
        sizes: dict[str, float] = {}
        cdp.on(
            "Network.requestWillBeSent",
            lambda e: urls.update({e["requestId"]: e["request"]["url"]}),
        )
        cdp.on(
            "Network.dataReceived",
            lambda e: sizes.update(
                {e["requestId"]: sizes.get(e["requestId"], 0) + e["encodedDataLength"]}
            ),
        )
        cdp.on(
            "Network.loadingFinished",
            lambda e: sizes.update({e["requestId"]: e["encodedDataLength"]}),
        )
        await page.goto(page_url)
        await page.wait_for_selector(".aura-conn[data-state=live]", timeout=10_000)
        await page.wait_for_selector("article.aura-agent", timeout=10_000)
        await asyncio.sleep(1)
        print("page weight (bytes on the wire, headers included):")
        total = assets = 0.0
        for rid, url in urls.items():
            if url.startswith(page_url) or not sizes.get(rid):  # the host page; preflights
                continue
            total += sizes[rid]
            path = url.removeprefix(bridge)
            if path.startswith("/ui/"):
                assets += sizes[rid]
            print(f"  {int(sizes[rid]):>7}  {path}")
        print(f"  {int(assets):>7}  the view itself (embed.js + embed.css)")
        print(f"  {int(total):>7}  total, with the data of one Agent and the open stream")

        await page.evaluate(OBSERVER)
        latencies = []
        for i in range(args.changes):
            phase = PHASES[i % len(PHASES)]
            start = time.time() * 1000
            await asyncio.to_thread(write_phase, custom, namespace, phase)
            shown = f"window.__seen.length && window.__seen.at(-1).phase === '{phase}'"
            await page.wait_for_function(shown, timeout=5000)
            seen = await page.evaluate("window.__seen[window.__seen.length-1].t")
            latencies.append(seen - start)
        await browser.close()
    print(f"status write -> browser shows it, {len(latencies)} changes (ms):")
    print(
        f"  p50 {percentile(latencies, 50):.1f}  p90 {percentile(latencies, 90):.1f}  "
        f"p99 {percentile(latencies, 99):.1f}  max {max(latencies):.1f}  "
        f"mean {statistics.fmean(latencies):.1f}"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=100)
    args = parser.parse_args()
    print(f"machine at the start: {machine()}", flush=True)
    with control_plane() as cp:
        result = bench(args, cp.kubeconfig)
    print(f"machine at the end: {machine()}")
    return result


def bench(args: argparse.Namespace, kubeconfig: str) -> int:
    config.load_kube_config(kubeconfig)
    namespace = "bench-ui-" + secrets.token_hex(3)
    client.CoreV1Api().create_namespace({"metadata": {"name": namespace}})
    client.CustomObjectsApi().create_namespaced_custom_object(
        "aura.dev",
        "v1alpha1",
        namespace,
        "agents",
        {
            "apiVersion": "aura.dev/v1alpha1",
            "kind": "Agent",
            "metadata": {"name": "bench-ui", "labels": {"aura.dev/stripe-customer": CUSTOMER}},
            "spec": {"desiredState": "running"},
        },
    )
    write_phase(client.CustomObjectsApi(), namespace, "Queued")
    port = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": kubeconfig,
        "STRIPE_WEBHOOK_SECRET": "whsec_bench_" + secrets.token_hex(16),
        "AURA_API_TOKENS": TOKEN,
        "AURA_TOKEN_KEYS": KEY,
        "AURA_BRIDGE_NAMESPACE": namespace,
    }
    log = open(os.environ.get("AURA_BENCH_LOG", os.devnull), "wb")  # noqa: SIM115
    bridge = subprocess.Popen(
        [str(REPO / ".venv/bin/aura"), "bridge", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # a busy machine slows start-up
        while time.monotonic() < deadline:
            if bridge.poll() is not None:
                raise SystemExit(f"bridge exited with {bridge.returncode}")
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        return asyncio.run(run(args, url, namespace))
    finally:
        bridge.terminate()
        try:
            bridge.wait(timeout=10)
        except subprocess.TimeoutExpired:
            bridge.kill()


if __name__ == "__main__":
    sys.exit(main())
