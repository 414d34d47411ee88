"""Benchmark: one cx22 Agent hibernated and woken through the real operator.

    .venv/bin/python hack/bench/hibernate.py                  # --time-scale 1 (~10 min)
    .venv/bin/python hack/bench/hibernate.py --time-scale 0.1

Starts a private control plane with the CRDs (`_harness`, removed at the end), an in-process
sandbox and `aura operator` with its default intervals, provisions one Agent (cx22, nbg1),
then prints for each operation the wall time divided by the time scale (simulated seconds) and
the Hetzner API calls the sandbox served meanwhile, by route:

- hibernate: `desiredState: hibernated` -> phase Hibernated (shutdown, checkpoint of the
  powered-off disk, server deleted);
- wake: `desiredState: running` -> phase Running (server created from the checkpoint's image,
  configured, in the tailnet, healthy).

Then the monthly cost of the Agent stopped (server and IPv4 billed, powered off or not) and
hibernated (the snapshot's GB-month only), from the sandbox's price catalog (`GET /pricing`).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from _harness import machine, operator_process, test_cluster  # noqa: E402
from tests.kube import Cluster, fresh_namespace  # noqa: E402

from aura.models import GROUP, VERSION  # noqa: E402
from aura_sandbox.harness import Sandbox  # noqa: E402


def _calls(sandbox: Sandbox) -> Counter[str]:
    return Counter({k: v for k, v in sandbox.request_counts().items() if " /v1/" in k})


def _agent(cluster: Cluster, ns: str) -> dict[str, Any]:
    try:
        obj: dict[str, Any] = cluster.custom.get_namespaced_custom_object(
            GROUP, VERSION, ns, "agents", "bench"
        )
    except Exception:
        return {}
    return obj


def _phase(cluster: Cluster, ns: str) -> str | None:
    return (_agent(cluster, ns).get("status") or {}).get("phase")


def _wait(fn: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}")


def _desired(cluster: Cluster, ns: str, state: str) -> None:
    spec = {"desiredState": state, "server": {"type": "cx22", "location": "nbg1"}}
    doc = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Agent",
           "metadata": {"name": "bench", "namespace": ns}, "spec": spec}  # fmt: skip
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))


def _monthly(sandbox: Sandbox, size_gb: float) -> tuple[float, float, float, str]:
    """Stopped, hibernated and the difference per month (net) from the sandbox's `/pricing`
    (hcloud-python has no pricing client: a plain GET, as the operator's adapter does)."""
    response = httpx.get(
        f"{sandbox.ready.hetzner_url}/pricing",
        headers={"Authorization": f"Bearer {sandbox.ready.hetzner_token}"},
        timeout=10,
    )
    response.raise_for_status()
    pricing = response.json()["pricing"]
    server = next(t for t in pricing["server_types"] if t["name"] == "cx22")
    monthly = next(
        float(p["price_monthly"]["net"]) for p in server["prices"] if p["location"] == "nbg1"
    )
    ipv4 = next(
        float(p["price_monthly"]["net"])
        for ip in pricing["primary_ips"]
        if ip["type"] == "ipv4"
        for p in ip["prices"]
        if p["location"] == "nbg1"
    )
    image = float(pricing["image"]["price_per_gb_month"]["net"])
    stopped, hibernated = monthly + ipv4, size_gb * image
    return stopped, hibernated, stopped - hibernated, str(pricing["currency"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-scale", type=float, default=1.0)
    args = parser.parse_args()
    scale = args.time_scale
    limit = 3600 * scale + 120
    print(f"machine at the start: {machine()}", flush=True)
    with test_cluster() as cluster, Sandbox(time_scale=scale) as sandbox:
        ns = next(fresh_namespace(cluster, "bench-hibernate"))
        with operator_process(cluster.kubeconfig, sandbox, ns, "hibernate") as log_path:
            results: list[tuple[str, float, Counter[str]]] = []

            def measure(what: str, state: str, phase: str) -> None:
                before, began = _calls(sandbox), time.monotonic()
                _desired(cluster, ns, state)
                _wait(lambda: _phase(cluster, ns) == phase, limit, phase)
                results.append((what, (time.monotonic() - began) / scale, _calls(sandbox) - before))

            _desired(cluster, ns, "running")
            _wait(lambda: _phase(cluster, ns) == "Running", limit, "Running")
            measure("hibernate -> Hibernated", "hibernated", "Hibernated")
            hib = (_agent(cluster, ns).get("status") or {}).get("hibernation") or {}
            measure("wake -> Running", "running", "Running")
        stopped, hibernated, saving, currency = _monthly(sandbox, float(hib.get("sizeGB") or 0))
    print(f"time scale: {scale}  (times below in simulated seconds)")
    for what, seconds, calls in results:
        print(f"{what:26s} {seconds:7.1f} s   Hetzner calls: {sum(calls.values())}")
        for route, count in sorted(calls.items()):
            print(f"    {count:4d}  {route}")
    print(f"snapshot: {hib.get('sizeGB')} GB (image {hib.get('imageID')})")
    print(
        f"per month, net {currency}: stopped {stopped:.4f} (cx22 + primary IPv4, billed off or on)"
    )
    print(f"                     hibernated {hibernated:.4f} (snapshot storage only)")
    print(f"                     saving {saving:.4f}; status.hibernation.monthlySaving = "
          f"{hib.get('monthlySaving')}")  # fmt: skip
    print(f"operator log: {log_path}")
    print(f"machine at the end: {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
