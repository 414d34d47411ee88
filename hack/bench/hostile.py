#!/usr/bin/env python3
"""Soak of `aura bridge` under hostile loopback traffic, with and without its limits.

    .venv/bin/python hack/bench/hostile.py [--seconds 30] [--rate 4] [--mode both]

Starts a private control plane with the CRDs applied (`_harness.test_cluster`, stopped at the
end), then for each mode starts `aura bridge` as a subprocess in a fresh namespace,
floods it for `--seconds` (oversize declared bodies, chunked bodies, drip-fed headers and
bodies, bursts of forged signatures; see `tests/bridge/flood.py`) while genuine signed events
create Agents and pause them at `--rate` events per second. Prints, per mode, the bridge's peak
resident memory (kernel high-water mark), the signed events' latency percentiles and answers,
whether every Agent reached its desired state, and what the hostile clients got. Mode
`no-limits` passes flags that turn every limit off: the bridge as it was before them; `quiet`
(first, unless `--no-baseline`) sends the same signed events with no flood at all, to tell the
flood's cost from the machine's own load.
Exits 1 if, with the limits, a signed event was not answered 200 and applied or the peak
memory reached the Deployment's 256 MiB limit.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from _harness import machine, test_cluster  # noqa: E402
from tests.bridge.flood import (  # noqa: E402 (the repository root is put on the path first)
    MEMORY_LIMIT,
    NO_LIMITS,
    Flood,
    FloodPlan,
    MiB,
    SignedEvents,
    percentile,
    start_bridge,
)
from tests.kube import Cluster, fresh_namespace  # noqa: E402

from aura.models import GROUP, PLURAL, VERSION  # noqa: E402


def flood_process(port: int, plan: FloodPlan, seconds: float, queue: Any) -> None:
    """The flood in a process of its own, so that its sending does not delay the signed events'
    client (their latency is the bridge's, not this script's event loop's)."""
    flood = Flood(port, plan, seconds)
    queue.put("started")
    asyncio.run(flood.run())
    queue.put(dict(flood.outcomes))


async def soak(
    bridge_url: str, port: int, secret: str, args: argparse.Namespace, quiet: bool
) -> tuple[dict[str, int], SignedEvents]:
    plan = FloodPlan(
        oversize=args.oversize,
        oversize_bytes=args.oversize_mib * MiB,
        chunked=args.chunked,
        drip=args.drip,
        forged_burst=args.forged_burst,
        forged_bytes=args.forged_kib * 1024,
    )
    agents = max(1, int(args.rate * args.seconds / 2))
    genuine = SignedEvents(bridge_url, secret, agents=agents, prefix="soak", rate=args.rate)
    if quiet:
        await genuine.run()
        return {}, genuine
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    # A little longer than the signed events, so that none of them comes after the flood.
    seconds = args.seconds + 2
    flooder = context.Process(target=flood_process, args=(port, plan, seconds, queue))
    flooder.start()
    assert await asyncio.to_thread(queue.get, True, 60) == "started"
    await asyncio.sleep(1)  # the flood is under way
    await genuine.run()
    outcomes: dict[str, int] = await asyncio.to_thread(queue.get, True, args.seconds + 120)
    flooder.join()
    return outcomes, genuine


def run_mode(cluster: Cluster, mode: str, args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    namespace = next(fresh_namespace(cluster, f"soak-{mode}"))
    flags = NO_LIMITS if mode == "no-limits" else ()
    bridge = start_bridge(cluster.kubeconfig, namespace, logs / f"bridge-{mode}.log", flags)
    try:
        idle = bridge.peak_rss()
        cpu = bridge.cpu_seconds()
        started = time.monotonic()
        flood, genuine = asyncio.run(
            soak(bridge.url, bridge.port, bridge.secret, args, quiet=mode == "quiet")
        )
        elapsed = time.monotonic() - started
        peak = bridge.peak_rss()
        cpu = bridge.cpu_seconds() - cpu
    finally:
        bridge.stop()
    listed = cluster.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    got = {a["metadata"]["name"]: a["spec"]["desiredState"] for a in listed["items"]}
    applied = sum(got.get(name) == "stopped" for name in genuine.names())
    codes: dict[str, int] = {}
    for _, status, outcome in genuine.answers:
        key = f"{status} {outcome}"
        codes[key] = codes.get(key, 0) + 1
    lat = [x * 1000 for x in genuine.latencies] or [float("nan")]
    return {
        "mode": mode,
        "idle": idle,
        "peak": peak,
        "p50": percentile(lat, 50),
        "p99": percentile(lat, 99),
        "max": max(lat),
        "sent": len(genuine.answers),
        "ok": sum(1 for _, status, _ in genuine.answers if status == 200),
        "codes": codes,
        "applied": applied,
        "agents": genuine.agents,
        "hostile": dict(sorted(flood.items())),
        "elapsed": elapsed,
        "cpu": cpu,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30, help="flood duration")
    parser.add_argument("--rate", type=float, default=4, help="signed events per second")
    parser.add_argument("--mode", choices=["both", "limits", "no-limits"], default="both")
    parser.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="first a run without flood (limits on): the machine's own latency for reference",
    )
    parser.add_argument("--oversize", type=int, default=40, help="concurrent oversize senders")
    parser.add_argument("--oversize-mib", type=int, default=20, help="size of an oversize body")
    parser.add_argument("--chunked", type=int, default=8, help="concurrent chunked senders")
    parser.add_argument("--drip", type=int, default=100, help="concurrent drip-fed requests")
    parser.add_argument("--forged-burst", type=int, default=40, help="forged requests per burst")
    parser.add_argument("--forged-kib", type=int, default=256, help="size of a forged body")
    args = parser.parse_args()

    modes = ["limits", "no-limits"] if args.mode == "both" else [args.mode]
    modes = ["quiet", *modes] if args.baseline else modes
    results = []
    print(f"machine at the start: {machine()}", flush=True)
    with test_cluster() as cluster, tempfile.TemporaryDirectory(prefix="aura-hostile-") as tmp:
        logs = Path(os.environ.get("AURA_BENCH_LOGS", tmp))
        for mode in modes:
            results.append(run_mode(cluster, mode, args, logs))

    print(
        f"hostile soak: {args.seconds:g} s flood of {args.oversize} x {args.oversize_mib} MiB "
        f"declared + {args.chunked} chunked bodies, {args.drip} drip-fed requests, bursts of "
        f"{args.forged_burst} x {args.forged_kib} KiB forged signatures every 0.5 s; "
        f"signed events at {args.rate:g}/s"
    )
    print(
        f"{'mode':<10} {'idle MiB':>9} {'peak MiB':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'200s':>9} {'applied':>9} {'bridge CPU s':>13}"
    )
    for r in results:
        print(
            f"{r['mode']:<10} {r['idle'] / MiB:>9.0f} {r['peak'] / MiB:>9.0f} {r['p50']:>8.1f} "
            f"{r['p99']:>8.1f} {r['max']:>8.1f} {r['ok']:>4}/{r['sent']:<4} "
            f"{r['applied']:>4}/{r['agents']:<4} {r['cpu']:>13.1f}"
        )
    for r in results:
        print(f"  {r['mode']}: signed answers {r['codes']}")
        print(f"  {r['mode']}: hostile outcomes {r['hostile']}")
    print(f"  machine: {machine()}; Pod memory limit 256 MiB")
    failed = [
        r
        for r in results
        if r["mode"] == "limits"
        and (r["ok"] != r["sent"] or r["applied"] != r["agents"] or r["peak"] >= MEMORY_LIMIT)
    ]
    print(
        "  result:",
        "FAIL (with limits)"
        if failed
        else "PASS (with limits: all 200 and applied, peak < 256 MiB)",
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
