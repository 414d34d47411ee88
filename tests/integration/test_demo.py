"""`aura demo`, the main job, end to end on the real apiserver, and its clean-up on Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.kube import REPO, Cluster

pytestmark = pytest.mark.integration

AURA = str(REPO / ".venv" / "bin" / "aura")


def children_of(pid: int) -> set[int]:
    found = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines())
        except (OSError, ValueError):
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.add(int(status.parent.name))
    return found


FIRST_PROVISIONING = ["Queued", "Provisioning", "Configuring", "Networking", "Running"]


def phases_printed(out: str, agent: str, step: str) -> list[str]:
    """The phase lines the demo printed for `agent` between `▶ step` and its result line."""
    lines = out.splitlines()
    begin = next(i for i, line in enumerate(lines) if f"▶ {step}" in line)
    end = next(i for i, line in enumerate(lines) if i > begin and f"✓ {step}" in line)
    prefix = f"  {agent}: phase "
    return [line.split(prefix, 1)[1].split()[0] for line in lines[begin:end] if prefix in line]


def kill_kept(out: str) -> None:
    """Stop the components `--keep` left running (the PIDs it printed)."""
    stop = [line for line in out.splitlines() if line.startswith("Stop: kill ")]
    for pid in stop[0].removeprefix("Stop: kill ").split(";")[0].split() if stop else []:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGTERM)


def test_demo_walks_the_lifecycle_and_keeps_a_live_fleet(cluster: Cluster, namespace: str) -> None:
    result = subprocess.run(
        [AURA, "demo", "--namespace", namespace, "--step-timeout", "120", "--keep"],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "KUBECONFIG": cluster.kubeconfig},
    )
    out = result.stdout
    print(out)  # the demo's own words, for the test log
    try:
        assert result.returncode == 0, out + result.stderr
        acme = re.search(r"Agent \S+/(acme-[0-9a-f]{4}) created", out)
        assert acme, out
        # Every phase of the first provisioning, however short, in order (a watch, not a poll).
        assert phases_printed(out, acme[1], "ACME: checkout completed") == FIRST_PROVISIONING
        assert f"(phases: {' → '.join(FIRST_PROVISIONING)})" in out
        for phase in ("Suspended", "Deleted"):
            assert f"{acme[1]}: phase {phase}" in out
        summary = out[out.index("STEP") : out.index("Everything keeps running")].splitlines()
        # The lifecycle (7 steps), then the dunning step (6): Umbrella hibernates unpaid.
        assert [line.split()[-1] for line in summary[1:] if line] == ["ok"] * 13
        umbrella = re.search(r"Agent \S+/(umbrella-[0-9a-f]{4}) created", out)
        assert umbrella, out
        for phase in ("Suspended", "Hibernated", "Running"):
            assert f"{umbrella[1]}: phase {phase}" in out
        assert "✓ Umbrella: notes still there after waking" in out

        # The demo's history of ACME: its phase Events in the order they happened.
        shown = out[out.index(f"History of {acme[1]}") : out.index("STEP")].splitlines()[2:]
        reasons = [line.split()[2] for line in shown if line.strip()]
        phases = [r for r in reasons if r in {*FIRST_PROVISIONING, "Suspended", "Deleted"}]
        assert phases[:5] == FIRST_PROVISIONING and phases[-1] == "Deleted", reasons

        # The fleet left behind: one Running, one Suspended, besides the cancelled record.
        agents = json.loads(cluster.kubectl("get", "agents", "-n", namespace, "-o", "json"))
        by_phase = {a["metadata"]["name"].split("-")[0]: a["status"]["phase"]
                    for a in agents["items"]}  # fmt: skip
        fleet = {
            "acme": "Deleted",
            "globex": "Running",
            "initech": "Suspended",
            "umbrella": "Running",
        }
        assert by_phase == fleet

        # The printed curl example answers with a running Agent.
        curls = [line.split() for line in out.splitlines() if line.strip().startswith("curl ")]
        token, url = curls[0][4].rstrip("'"), curls[0][5]
        answer = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert answer.status_code == 200 and answer.json()["phase"] == "Running", answer.text
        told = httpx.get(curls[1][5], headers={"Authorization": f"Bearer {token}"}, timeout=10)
        times = [i["time"] for i in told.json()["items"]]
        assert times and times == sorted(times)
        status = subprocess.run(
            [AURA, "status", "-n", namespace],
            capture_output=True,
            text=True,
            env={**os.environ, "KUBECONFIG": cluster.kubeconfig},
        )
        rows = [line for line in status.stdout.splitlines()[1:] if line.strip()]
        agents = [line for line in rows if not line.startswith("TOTAL")]  # the cost total
        assert sorted(line.split()[2] for line in agents) == sorted(fleet.values())
    finally:
        kill_kept(out)


def test_demo_cleans_up_on_ctrl_c(cluster: Cluster, namespace: str) -> None:
    proc = subprocess.Popen(
        [AURA, "demo", "--namespace", namespace],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "KUBECONFIG": cluster.kubeconfig},
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "▶ ACME: checkout completed" in line:
            break
    children = children_of(proc.pid)
    assert len(children) == 3, seen  # sandbox, bridge, operator
    proc.send_signal(signal.SIGINT)
    rest = proc.stdout.read()
    assert proc.wait(timeout=60) == 1
    assert "interrupted: cleaning up" in rest
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in children):
        time.sleep(0.1)
    assert not [p for p in children if Path(f"/proc/{p}").exists()]
