"""Benchmark `aura sandbox`: requests/s and latency with 1,000 servers in the world.

Starts the sandbox as a subprocess (`_harness.sandbox_process`, stopped at the end) pinned to
one core (`taskset -c 0` when available), fills it with 1,000 servers through the API, then
drives a realistic mix from this process (pinned to another core) for `--seconds` with bounded
concurrency:

    55 % GET /v1/servers/{id}     20 % GET /v1/servers?label_selector=...
    20 % GET /v1/actions/{id}      5 % POST /v1/servers + DELETE /v1/servers/{id}

Prints one line per request kind and a total with requests/s, p50 and p99, and the machine's
load. Runs in well under
two minutes: `.venv/bin/python hack/bench/sandbox.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
from collections import defaultdict

import aiohttp
from _harness import machine, sandbox_process

SERVERS = 1000


async def fill(session: aiohttp.ClientSession, url: str) -> tuple[list[int], list[int]]:
    server_ids: list[int] = []
    action_ids: list[int] = []
    sem = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        body = {
            "name": f"bench-{i:04d}",
            "server_type": "cx22",
            "image": "ubuntu-24.04",
            "labels": {"aura.dev/agent": f"a{i}", "tier": ("web", "db", "cache")[i % 3]},
            "user_data": "#cloud-config\n",
        }
        async with sem, session.post(f"{url}/servers", json=body) as response:
            data = await response.json()
            assert response.status == 201, data
            server_ids.append(data["server"]["id"])
            action_ids.append(data["action"]["id"])

    await asyncio.gather(*(one(i) for i in range(SERVERS)))
    return server_ids, action_ids


async def drive(
    session: aiohttp.ClientSession,
    url: str,
    server_ids: list[int],
    action_ids: list[int],
    seconds: float,
    concurrency: int,
) -> dict[str, list[float]]:
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**9))

    async def timed(kind: str, method: str, path: str, **kwargs: object) -> dict[str, object]:
        started = time.perf_counter()
        async with session.request(method, url + path, **kwargs) as response:  # type: ignore[arg-type]
            data = await response.json() if response.status != 204 else {}
            if response.status >= 400:
                errors[kind] += 1
        latencies[kind].append(time.perf_counter() - started)
        return data  # type: ignore[no-any-return]

    async def worker() -> None:
        rng = random.Random()
        while time.perf_counter() < deadline:
            roll = rng.random()
            if roll < 0.55:
                await timed("get_server", "GET", f"/servers/{rng.choice(server_ids)}")
            elif roll < 0.75:
                selector = rng.choice(
                    [f"aura.dev/agent=a{rng.randrange(SERVERS)}", "tier=db", "tier in (web,cache)"]
                )
                await timed("list_selector", "GET", "/servers", params={"label_selector": selector})
            elif roll < 0.95:
                await timed("get_action", "GET", f"/actions/{rng.choice(action_ids)}")
            else:
                name = f"churn-{next(counter)}"
                body = {"name": name, "server_type": "cx22", "image": "ubuntu-24.04"}
                created = await timed("create", "POST", "/servers", json=body)
                server = created["server"]
                assert isinstance(server, dict)
                await timed("delete", "DELETE", f"/servers/{server['id']}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    if errors:
        print(f"errors: {dict(errors)}")
    return latencies


def report(latencies: dict[str, list[float]], seconds: float) -> None:
    def line(kind: str, values: list[float]) -> str:
        ordered = sorted(values)
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        return (
            f"{kind:<14} {len(values):>7} req {len(values) / seconds:>8.1f} req/s "
            f"p50 {p50:>6.2f} ms  p99 {p99:>6.2f} ms"
        )

    for kind in sorted(latencies):
        print(line(kind, latencies[kind]))
    print(line("TOTAL", [v for values in latencies.values() for v in values]))


async def main(seconds: float, concurrency: int) -> None:
    print(f"machine at the start: {machine()}", flush=True)
    args = ["--time-scale", "0.01", "--rate-limit", "1000000000", "--rate-limit-refill", "1000000"]
    with sandbox_process(*args, cpu=0) as info:
        if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
            os.sched_setaffinity(0, {1})
        headers = {"Authorization": f"Bearer {info['hetzner_token']}"}
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
            url = info["hetzner_url"]
            started = time.perf_counter()
            server_ids, action_ids = await fill(session, url)
            print(f"filled {len(server_ids)} servers in {time.perf_counter() - started:.1f} s")
            await asyncio.sleep(1.0)  # let the scaled boots finish, as in a settled world
            started = time.perf_counter()
            latencies = await drive(session, url, server_ids, action_ids, seconds, concurrency)
            report(latencies, time.perf_counter() - started)
    print(f"machine at the end: {machine()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.concurrency))
