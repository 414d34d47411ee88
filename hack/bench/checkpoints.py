"""Benchmark: one Agent's checkpoint, restore and clone through the real operator.

    .venv/bin/python hack/bench/checkpoints.py                  # --time-scale 1 (~15 min)
    .venv/bin/python hack/bench/checkpoints.py --time-scale 0.1

Starts a private control plane with the CRDs (`_harness.test_cluster`, stopped at the end), an
in-process sandbox and `aura operator` with its default intervals, provisions one Agent, then
prints for each operation the wall time (divided by the time scale, i.e. in simulated seconds)
and the Hetzner API calls the sandbox served meanwhile, by route:

- checkpoint (mode online): AgentCheckpoint created -> readyToUse;
- restore (StopTarget): AgentRestore created -> the Agent Running again;
- clone: Agent with spec.source.checkpoint created -> Running.

The sandbox's model of the default disk: 1.4 GB of Ubuntu plus 0.6 GB of Node.js and OpenClaw.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from _harness import machine, operator_process, test_cluster  # noqa: E402
from tests.kube import Cluster, fresh_namespace  # noqa: E402

from aura.models import GROUP, VERSION  # noqa: E402
from aura_sandbox.harness import Sandbox  # noqa: E402


def _calls(sandbox: Sandbox) -> Counter[str]:
    return Counter({k: v for k, v in sandbox.request_counts().items() if " /v1/" in k})


def _get(cluster: Cluster, ns: str, plural: str, name: str) -> dict[str, Any]:
    try:
        obj: dict[str, Any] = cluster.custom.get_namespaced_custom_object(
            GROUP, VERSION, ns, plural, name
        )
    except Exception:
        return {}
    return obj


def _wait(fn: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}")


def _apply(cluster: Cluster, kind: str, ns: str, name: str, spec: dict[str, Any]) -> None:
    doc = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind,
           "metadata": {"name": name, "namespace": ns}, "spec": spec}  # fmt: skip
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))


def _phase(cluster: Cluster, ns: str, plural: str, name: str) -> str | None:
    return (_get(cluster, ns, plural, name).get("status") or {}).get("phase")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-scale", type=float, default=1.0)
    args = parser.parse_args()
    scale = args.time_scale
    limit = 3600 * scale + 120
    print(f"machine at the start: {machine()}", flush=True)
    with test_cluster() as cluster, Sandbox(time_scale=scale) as sandbox:
        ns = next(fresh_namespace(cluster, "bench-ckpt"))
        with operator_process(cluster.kubeconfig, sandbox, ns, "checkpoints") as log_path:
            results: list[tuple[str, float, Counter[str]]] = []

            def measure(what: str, start: Callable[[], None], done: Callable[[], bool]) -> None:
                before, began = _calls(sandbox), time.monotonic()
                start()
                _wait(done, limit, what)
                results.append((what, (time.monotonic() - began) / scale, _calls(sandbox) - before))

            _apply(cluster, "Agent", ns, "bench", {"desiredState": "running"})
            _wait(lambda: _phase(cluster, ns, "agents", "bench") == "Running", limit, "Running")
            measure(
                "checkpoint -> readyToUse",
                lambda: _apply(
                    cluster,
                    "AgentCheckpoint",
                    ns,
                    "bench-1",
                    {"agentName": "bench", "mode": "online"},
                ),
                lambda: bool(
                    (_get(cluster, ns, "agentcheckpoints", "bench-1").get("status") or {}).get(
                        "readyToUse"
                    )
                ),
            )
            measure(
                "restore -> Running",
                lambda: _apply(
                    cluster,
                    "AgentRestore",
                    ns,
                    "bench-r",
                    {
                        "agentName": "bench",
                        "checkpointName": "bench-1",
                        "targetReadinessPolicy": "StopTarget",
                    },
                ),
                lambda: (
                    _phase(cluster, ns, "agentrestores", "bench-r") == "Succeeded"
                    and _phase(cluster, ns, "agents", "bench") == "Running"
                ),
            )
            measure(
                "clone -> Running",
                lambda: _apply(
                    cluster, "Agent", ns, "bench-clone", {"source": {"checkpoint": "bench-1"}}
                ),
                lambda: _phase(cluster, ns, "agents", "bench-clone") == "Running",
            )
    print(f"time scale: {scale}  (times below in simulated seconds)")
    for what, seconds, calls in results:
        print(f"{what:28s} {seconds:7.1f} s   Hetzner calls: {sum(calls.values())}")
        for route, count in sorted(calls.items()):
            print(f"    {count:4d}  {route}")
    print(f"operator log: {log_path}")
    print(f"machine at the end: {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
