"""Chaos: a dozen Agents under injected faults, repeated SIGKILLs of the operator and random
desired-state changes. With the faults off, every Agent converges to its desired state by
itself (no retry annotation), with no duplicate server, no orphan and no leaked device.

Prints its figures (Agents, transitions, SIGKILLs, faults served, time to converge).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import pytest

from aura_sandbox.harness import Sandbox
from tests.kube import Cluster
from tests.operator.harness import (
    OperatorProcess,
    agent_manifest,
    apply,
    devices,
    get_agent,
    patch_spec,
    servers_of,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

AGENTS = 12
CHAOS_SECONDS = 45
PHASE_OF = {"running": "Running", "stopped": "Stopped", "suspended": "Suspended"}
FAULTS: list[dict[str, Any]] = [
    {"kind": "http_error", "status": 503, "path": r"^/v1/servers", "probability": 0.2},
    {"kind": "response_lost", "method": "POST", "path": r"^/v1/servers$", "probability": 0.2},
    {"kind": "timeout", "delay": 2, "path": r"^/v1/servers/\d+/actions", "probability": 0.15},
    {"kind": "http_error", "status": 502, "path": r"^/api/v2/", "probability": 0.2},
    {"kind": "timeout", "delay": 2, "path": r"^/api/v2/tailnet", "probability": 0.15},
]


@pytest.mark.xfail(
    strict=True,
    reason="KNOWN DEFECT found by this run: an Agent stopped and started again before its "
    "device joined resumes with no provisioning attempt (so no tailnet-join timeout) and can "
    "wait in Networking for a device that never comes. Fix, then remove this mark.",
)
def test_chaos_converges_without_duplicates_orphans_or_leaks(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    rng = random.Random(14)
    op = start_operator(
        attempt_backoff_max="3",
        step_retries="2",
        boot_timeout="8",
        provision_deadline="40",
        health_timeout="1",
        heal_restart_after="2",
        heal_reboot_after="3",
        heal_replace_after="4",
    )
    names = [f"chaos-{i:02d}" for i in range(AGENTS)]
    for fault in FAULTS:
        spec = dict(fault)
        sandbox.inject(spec.pop("kind"), **spec)
    for name in names:
        apply(cluster, agent_manifest(name, namespace))

    desired = dict.fromkeys(names, "running")
    transitions = kills = 0
    started = time.monotonic()
    next_kill = started + rng.uniform(6, 12)
    while time.monotonic() - started < CHAOS_SECONDS:
        name = rng.choice(names)
        want = rng.choice(["running", "running", "stopped", "suspended"])
        if want != desired[name]:
            patch_spec(cluster, namespace, name, {"desiredState": want})
            desired[name], transitions = want, transitions + 1
        if time.monotonic() >= next_kill:
            op.kill()
            time.sleep(rng.uniform(0.1, 1.0))
            op.start()
            kills += 1
            next_kill = time.monotonic() + rng.uniform(6, 12)
        time.sleep(rng.uniform(0.5, 2.0))
    served = sum(f["hits"] for f in sandbox.call(lambda w: w.faults.list()))
    sandbox.clear_faults()
    faults_off = time.monotonic()

    def converged() -> bool:
        behind = {}
        for name in names:
            status = (get_agent(cluster, namespace, name) or {}).get("status", {})
            if status.get("phase") != PHASE_OF[desired[name]]:
                behind[name] = (desired[name], status.get("phase"), status.get("message"))
        assert not behind, behind
        return True

    wait_for(converged, 420, interval=1, what="every Agent at its desired phase")
    took = time.monotonic() - faults_off
    print(
        f"\nchaos: {AGENTS} Agents, {transitions} desired-state changes, {kills} SIGKILLs, "
        f"{served} injected faults served in {CHAOS_SECONDS}s; converged {took:.1f}s after "
        "the faults stopped"
    )

    agents = {n: get_agent(cluster, namespace, n) or {} for n in names}
    uids = {a["metadata"]["uid"] for a in agents.values()}
    for name, agent in agents.items():
        assert "aura.dev/retry" not in (agent["metadata"].get("annotations") or {})
        servers = servers_of(sandbox, agent["metadata"]["uid"])
        assert len(servers) <= 1, (name, servers)  # no duplicates
        if desired[name] == "running":
            assert len(servers) == 1 and servers[0]["status"] == "running", (name, servers)
            assert agent["status"]["server"]["id"] == servers[0]["id"]
        else:
            assert all(s["status"] == "off" for s in servers), (name, servers)
    # The sandbox is this test's own: every server and device in it is this fleet's.
    orphans = [
        s["id"] for s in servers_of(sandbox) if s["labels"].get("aura.dev/agent-uid") not in uids
    ]
    assert orphans == []
    hostnames = [d["hostname"] for d in devices(sandbox) if d["hostname"].startswith("aura-")]
    assert len(hostnames) == len(set(hostnames)), hostnames  # no duplicate devices
    known = {(a["status"].get("tailscale") or {}).get("hostname") for a in agents.values()}
    leaked = [h for h in hostnames if h not in known]
    assert leaked == []
