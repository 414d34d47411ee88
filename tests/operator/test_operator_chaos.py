"""Chaos: a dozen Agents under injected faults, repeated SIGKILLs of the operator and random
desired-state changes. With the faults off, every Agent converges to its desired state by
itself (no retry annotation), with no duplicate server, no orphan and no leaked device.

Prints its figures (Agents, transitions, SIGKILLs, faults served, time to converge).
`AURA_CHAOS_SEED` picks another sequence of desired states and kill moments (default 14).
"""

from __future__ import annotations

import os
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
CHAOS_SECONDS = 60
MIN_KILLS = 4
CHAOS_CAP = 300  # seconds: the kills must land within this
PHASE_OF = {"running": "Running", "stopped": "Stopped", "suspended": "Suspended"}
FAULTS: list[dict[str, Any]] = [
    {"kind": "http_error", "status": 503, "path": r"^/v1/servers", "probability": 0.2},
    {"kind": "response_lost", "method": "POST", "path": r"^/v1/servers$", "probability": 0.2},
    {"kind": "timeout", "delay": 2, "path": r"^/v1/servers/\d+/actions", "probability": 0.15},
    {"kind": "http_error", "status": 502, "path": r"^/api/v2/", "probability": 0.2},
    {"kind": "timeout", "delay": 2, "path": r"^/api/v2/tailnet", "probability": 0.15},
]


def test_chaos_converges_without_duplicates_orphans_or_leaks(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    seed = int(os.environ.get("AURA_CHAOS_SEED", "14"))  # another seed, another run
    rng = random.Random(seed)
    op = start_operator(
        env={"PYTHONUNBUFFERED": "1"},  # the log survives each SIGKILL
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
    # A kill lands at a random moment *after* the new process has started acting (its first
    # request to the sandbox): on a loaded machine the interpreter alone can take seconds to
    # start, and a kill before then tests nothing.
    baseline, next_kill = requests(sandbox), None
    while time.monotonic() - started < CHAOS_SECONDS or kills < MIN_KILLS:
        assert time.monotonic() - started < CHAOS_CAP, f"only {kills} SIGKILLs landed"
        name = rng.choice(names)
        want = rng.choice(["running", "running", "stopped", "suspended"])
        if want != desired[name]:
            patch_spec(cluster, namespace, name, {"desiredState": want})
            desired[name], transitions = want, transitions + 1
        if next_kill is None and requests(sandbox) > baseline:
            next_kill = time.monotonic() + rng.uniform(2, 8)
        elif next_kill is not None and time.monotonic() >= next_kill:
            op.kill()
            baseline, next_kill = requests(sandbox), None
            time.sleep(rng.uniform(0.1, 1.0))
            op.start()
            kills += 1
        time.sleep(rng.uniform(0.5, 2.0))
    chaos_seconds = time.monotonic() - started
    served = sum(f["hits"] for f in sandbox.call(lambda w: w.faults.list()))
    sandbox.clear_faults()
    faults_off = time.monotonic()
    assert served > 0 and transitions > 0  # the chaos was real

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
        f"\nchaos (seed {seed}): {AGENTS} Agents, {transitions} desired-state changes, "
        f"{kills} SIGKILLs, "
        f"{served} injected faults served in {chaos_seconds:.0f}s; converged {took:.1f}s "
        "after the faults stopped"
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
            [device] = [d for d in devices(sandbox) if d["server_id"] == servers[0]["id"]]
            assert agent["status"]["tailscale"]["deviceId"] == device["node_id"], name
        else:
            assert all(s["status"] == "off" for s in servers), (name, servers)
    # The sandbox is this test's own: every server and device in it is this fleet's.
    orphans = [
        s["id"] for s in servers_of(sandbox) if s["labels"].get("aura.dev/agent-uid") not in uids
    ]
    assert orphans == []
    # A device is leaked unless it is attached to a live server of an Agent and carries that
    # server's name (a stopped Agent keeps its device, recorded in its status or not yet).
    live = {s["id"]: s for s in servers_of(sandbox)}
    ours = [d for d in devices(sandbox) if d["hostname"].startswith("aura-")]
    leaked = [
        (d["hostname"], d["server_id"])
        for d in ours
        if d["server_id"] not in live or live[d["server_id"]]["name"] != d["hostname"]
    ]
    assert leaked == []
    hostnames = [d["hostname"] for d in ours]
    assert len(hostnames) == len(set(hostnames)), hostnames  # no duplicate devices


def requests(sandbox: Sandbox) -> int:
    """Requests the sandbox has served so far (the operator's, every API)."""
    return sandbox.call(lambda w: sum(w.request_counts.values()))
