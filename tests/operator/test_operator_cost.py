"""Cost, margin and budgets end to end: the real operator, the real apiserver, the sandbox.

Prices are set through the sandbox's admin API to round figures, so every expectation below
is hand arithmetic: CX22 in nbg1 at 0.01/h capped at 5.00/month, the primary IPv4 at
0.632/month = 0.001/h (the sandbox divides by 632 h), 1 TB of traffic included, 2.00 per
extra TB. Creation times are moved with `PUT /admin/servers/{id}/created`, so "running for 90
minutes" takes seconds. Hours are counted in the current calendar month, from
max(created, first of the month 00:00 UTC) to the `computedAt` the operator reports.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from aura.cost.budget_models import BUDGET_PLURAL
from aura.models import GROUP, VERSION
from aura_sandbox.harness import Sandbox
from tests.kube import Cluster
from tests.operator.checkpoint_harness import CHECKPOINT_FLAGS
from tests.operator.harness import (
    agent_manifest,
    agent_uid,
    apply,
    condition,
    events,
    get_agent,
    patch_spec,
    servers_of,
    wait_for,
    wait_phase,
)

TB = 1024**4
HOURLY, MONTHLY, IP_HOURLY = 0.01, 5.0, 0.001
PRICES = {
    "server_types": {"cx22": {"nbg1": {"monthly": MONTHLY, "hourly": HOURLY}}},
    "primary_ipv4_monthly": 0.632,
    "traffic": {"nbg1": {"included_tb": 1, "per_tb": 2.0}},
}
COST_FLAGS = {"cost_interval": "1"}


def admin(sandbox: Sandbox) -> httpx.Client:
    return httpx.Client(base_url=sandbox.ready.admin_url.removesuffix("/admin"), timeout=10)


def set_prices(sandbox: Sandbox) -> None:
    with admin(sandbox) as http:
        assert http.put("/admin/pricing", json=PRICES).status_code == 200


def set_created(sandbox: Sandbox, server_id: int, when: datetime) -> None:
    with admin(sandbox) as http:
        r = http.put(f"/admin/servers/{server_id}/created", json={"created": when.isoformat()})
        assert r.status_code == 200, r.text


def cost_of(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return dict(((get_agent(cluster, ns, name) or {}).get("status") or {}).get("cost") or {})


def wait_cost(cluster: Cluster, ns: str, name: str, check: Any, what: str) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        cost = cost_of(cluster, ns, name)
        return cost if cost and check(cost) else None

    return wait_for(ready, 30, what=what)


def hours(created: datetime, until: datetime, month: datetime | None = None) -> int:
    """Hetzner's rule by hand: `month` (default: `until`'s) only, rounded up."""
    month = month or until.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return math.ceil((until - max(created, month)).total_seconds() / 3600)


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def server_id(cluster: Cluster, ns: str, name: str) -> int:
    agent = get_agent(cluster, ns, name) or {}
    return int(agent["status"]["server"]["id"])


def test_cost_of_known_timelines(
    cluster: Cluster, namespace: str, sandbox: Sandbox, start_operator: Any
) -> None:
    set_prices(sandbox)
    start_operator(**COST_FLAGS)
    ns = namespace
    for name in ("ninety", "week", "traffic", "replaced"):
        apply(cluster, agent_manifest(name, ns))
    for name in ("ninety", "week", "traffic", "replaced"):
        wait_phase(cluster, ns, name, "Running", timeout=90)
    now = datetime.now(UTC).replace(microsecond=0)

    # Running 90 minutes: 2 h -> 2 x 0.01 + 2 x 0.001 = 0.022 (when created this month).
    set_created(sandbox, server_id(cluster, ns, "ninety"), now - timedelta(minutes=90))
    # Stopped for a week: billed every hour all the same.
    set_created(sandbox, server_id(cluster, ns, "week"), now - timedelta(days=7))
    patch_spec(cluster, ns, "week", {"desiredState": "stopped"})
    wait_phase(cluster, ns, "week", "Stopped", timeout=60)
    # Over its traffic: 1.5 TB out, 1 TB included -> 0.5 TB x 2.00 = 1.00.
    set_created(sandbox, server_id(cluster, ns, "traffic"), now - timedelta(minutes=30))
    with admin(sandbox) as http:
        sid = server_id(cluster, ns, "traffic")
        r = http.post(f"/admin/servers/{sid}/traffic", json={"outgoing": int(1.5 * TB)})
        assert r.status_code == 200

    created_90 = now - timedelta(minutes=90)
    cost = wait_cost(
        cluster, ns, "ninety",
        lambda c: c.get("servers") and parse(c["servers"][0]["created"]) == created_90,
        "ninety's backdated server in its cost history",
    )  # fmt: skip
    h = hours(created_90, parse(cost["computedAt"]))
    assert h == 2 or created_90 < parse(cost["computedAt"]).replace(day=1, hour=0, minute=0)
    assert cost["monthToDate"] == pytest.approx(h * HOURLY + h * IP_HOURLY, abs=1e-4)
    assert cost["hourlyRate"] == pytest.approx(HOURLY + IP_HOURLY)
    assert cost["currency"] == "EUR"
    assert cost["priceListDate"]
    # Projected: the month capped at 5.00 + 0.632, or fewer hours left than the cap needs.
    month_end = (parse(cost["computedAt"]).replace(day=1) + timedelta(days=32)).replace(
        day=1, hour=0, minute=0, second=0
    )
    left = hours(
        created_90, month_end, parse(cost["computedAt"]).replace(day=1, hour=0, minute=0, second=0)
    )
    assert cost["projectedMonth"] == pytest.approx(
        min(left * HOURLY, MONTHLY) + min(left * IP_HOURLY, 0.632), abs=1e-4
    )

    created_week = now - timedelta(days=7)
    cost = wait_cost(
        cluster, ns, "week",
        lambda c: c.get("servers") and parse(c["servers"][0]["created"]) == created_week,
        "week's backdated server",
    )  # fmt: skip
    h = hours(created_week, parse(cost["computedAt"]))
    # e.g. on 3 Dec 07:00 the December part is 55 h: 0.55 + 0.055 = 0.605; mid-month 168 h.
    expected = min(h * HOURLY, MONTHLY) + min(h * IP_HOURLY, 0.632)
    assert cost["monthToDate"] == pytest.approx(expected, abs=1e-4)
    assert servers_of(sandbox, agent_uid(cluster, ns, "week"))[0]["status"] == "off"

    cost = wait_cost(
        cluster, ns, "traffic",
        lambda c: c.get("servers") and c["servers"][0]["outgoingTraffic"] == int(1.5 * TB),
        "traffic's outgoing bytes",
    )  # fmt: skip
    h = hours(now - timedelta(minutes=30), parse(cost["computedAt"]))
    assert cost["monthToDate"] == pytest.approx(h * 0.011 + 1.0, abs=1e-4)

    # Replaced: the old server (created 2.5 h ago) is deleted outside Aura and replaced; the
    # old one counts 3 h, the new one its own first hour: 4 h x 0.011 = 0.044.
    old_id = server_id(cluster, ns, "replaced")
    old_created = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2, minutes=30)
    set_created(sandbox, old_id, old_created)
    wait_cost(
        cluster, ns, "replaced",
        lambda c: parse(c["servers"][0]["created"]) == old_created,
        "replaced's backdated server",
    )  # fmt: skip
    hc = sandbox.ready.hcloud()
    hc.servers.delete(hc.servers.get_by_id(old_id))
    wait_phase(cluster, ns, "replaced", "Running", timeout=90)
    cost = wait_cost(
        cluster, ns, "replaced",
        lambda c: len(c["servers"]) == 2 and c["servers"][0].get("deleted"),
        "two servers in replaced's history",
    )  # fmt: skip
    old, new = cost["servers"]
    assert old["id"] == old_id and new["id"] != old_id
    old_hours = hours(parse(old["created"]), parse(old["deleted"]))
    new_hours = hours(parse(new["created"]), parse(cost["computedAt"]))
    assert (old_hours, new_hours) == (3, 1) or old_created.day != parse(old["deleted"]).day
    assert cost["monthToDate"] == pytest.approx((old_hours + new_hours) * 0.011, abs=1e-4)

    table = subprocess.run(
        [sys.executable, "-m", "aura", "status", "-n", ns],
        env={"KUBECONFIG": cluster.kubeconfig, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    print(table)
    assert "COST MTD" in table and "TOTAL (net, EUR)" in table

    # A restart remembers the deleted server (the history is in status, not in memory).
    start_operator(**COST_FLAGS)
    time.sleep(3)
    assert [s["id"] for s in cost_of(cluster, ns, "replaced")["servers"]] == [old_id, new["id"]]


def test_cost_of_a_hibernated_agent(
    cluster: Cluster, namespace: str, sandbox: Sandbox, start_operator: Any
) -> None:
    """Its server is billed from creation to deletion (hours rounded up); then only the
    snapshot's storage, pro rata: the hourly rate falls to the image's GB-hours."""
    set_prices(sandbox)
    start_operator(**COST_FLAGS, **CHECKPOINT_FLAGS)
    ns = namespace
    apply(cluster, agent_manifest("asleep", ns))
    wait_phase(cluster, ns, "asleep", "Running", timeout=90)
    created = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=4, minutes=30)
    set_created(sandbox, server_id(cluster, ns, "asleep"), created)
    wait_cost(
        cluster, ns, "asleep",
        lambda c: parse(c["servers"][0]["created"]) == created,
        "asleep's backdated server",
    )  # fmt: skip
    patch_spec(cluster, ns, "asleep", {"desiredState": "hibernated"})
    wait_phase(cluster, ns, "asleep", "Hibernated", timeout=90)
    cost = wait_cost(
        cluster, ns, "asleep",
        lambda c: c["servers"][0].get("deleted") and len(c.get("snapshots") or []) == 1,
        "the deleted server and the hibernation snapshot in asleep's history",
    )  # fmt: skip
    pricing = httpx.get(
        f"{sandbox.ready.hetzner_url}/pricing",
        headers={"Authorization": f"Bearer {sandbox.ready.hetzner_token}"},
        timeout=10,
    ).json()["pricing"]
    image_price = float(pricing["image"]["price_per_gb_month"]["net"])
    [server], [snap] = cost["servers"], cost["snapshots"]
    at = parse(cost["computedAt"])
    month = at.replace(day=1, hour=0, minute=0, second=0)
    month_hours = ((month + timedelta(days=32)).replace(day=1) - month).total_seconds() / 3600
    server_hours = hours(parse(server["created"]), parse(server["deleted"]))
    snap_hours = hours(parse(snap["created"]), at)
    per_gb_hour = image_price / month_hours
    assert server_hours == 5 or created < month  # 4 h 30 min and the hibernation, rounded up
    expected = server_hours * (HOURLY + IP_HOURLY) + snap["imageSizeGb"] * per_gb_hour * snap_hours
    assert cost["monthToDate"] == pytest.approx(expected, abs=1e-4)
    # No server, only the image: ~0.00003 an hour, which status rounds (4 places) to 0.
    assert cost["hourlyRate"] == round(snap["imageSizeGb"] * per_gb_hour, 4)
    assert cost["projectedMonth"] == pytest.approx(
        cost["monthToDate"]
        + snap["imageSizeGb"]
        * per_gb_hour
        * hours(at, month + timedelta(hours=month_hours), month),
        abs=1e-3,
    )


def budget(ns: str, name: str, limit: float, thresholds: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AgentBudget",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"limit": limit, "currency": "EUR", "thresholds": thresholds},
    }


def budget_status(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    obj = cluster.custom.get_namespaced_custom_object(GROUP, VERSION, ns, BUDGET_PLURAL, name)
    return dict(obj.get("status") or {})


def test_budget_actions_and_block_new(
    cluster: Cluster, namespace: str, sandbox: Sandbox, start_operator: Any
) -> None:
    cluster.kubectl("wait", "--for=condition=Established", "crd/agentbudgets.aura.dev")
    set_prices(sandbox)
    ns = namespace
    start_operator(**COST_FLAGS, **CHECKPOINT_FLAGS)
    apply(cluster, agent_manifest("first", ns))
    wait_phase(cluster, ns, "first", "Running", timeout=90)
    # 10 h of a server + IPv4 = 0.11 spent.
    set_created(sandbox, server_id(cluster, ns, "first"), datetime.now(UTC) - timedelta(hours=10))
    wait_cost(cluster, ns, "first", lambda c: c["monthToDate"] >= 0.11, "first's 10 hours")

    thresholds = [
        {"percent": 50, "action": "Notify"},
        {"percent": 100, "action": "BlockNew"},
        {"percent": 100, "action": "Hibernate", "includeRunning": True},
    ]
    crossed = time.monotonic()
    apply(cluster, budget(ns, "monthly", 0.10, thresholds))
    status = wait_for(
        lambda: (s := budget_status(cluster, ns, "monthly")).get("blocking") and s,
        30,
        what="the budget blocking",
    )
    took = time.monotonic() - crossed
    print(f"threshold crossed -> BlockNew in effect (budget status): {took:.2f}s")
    assert status["currentSpend"] >= 0.11
    by_action = {t["action"]: t for t in status["thresholds"]}
    assert by_action["Notify"]["active"] and by_action["Notify"]["lastFired"]
    assert "then running ones" in by_action["Hibernate"]["message"]
    # Hibernate (includeRunning) puts the running Agent to sleep: its data in a checkpoint, its
    # server deleted, its desiredState untouched.
    slept = wait_phase(cluster, ns, "first", "Hibernated", timeout=90)
    print(
        f"threshold crossed -> Hibernate done (phase Hibernated): {time.monotonic() - crossed:.2f}s"
    )
    assert slept["metadata"]["annotations"]["aura.dev/hibernated-by-budget"] == "monthly"
    assert slept["spec"]["desiredState"] == "running"
    assert slept["status"]["hibernation"]["cause"] == "budget"
    assert "held by AgentBudget monthly" in condition(slept, "Ready")["message"]
    assert servers_of(sandbox, agent_uid(cluster, ns, "first")) == []
    assert "BudgetHibernate" in [e["reason"] for e in events(cluster, ns, "first")]

    with admin(sandbox) as http:
        http.delete("/admin/requests")
    apply(cluster, agent_manifest("second", ns))
    agent = wait_phase(cluster, ns, "second", "Queued", timeout=30)
    agent = wait_for(
        lambda: (
            (a := get_agent(cluster, ns, "second"))
            and condition(a, "ServerReady")["reason"] == "BudgetBlocked"
            and a
        ),
        20,
        what="second held by the budget",
    )
    assert "AgentBudget " + ns + "/monthly" in condition(agent, "ServerReady")["message"]
    time.sleep(3)
    with admin(sandbox) as http:
        counts = http.get("/admin/requests").json()["requests"]
    # The operator kept reading Hetzner while it held the Agent back, but created nothing.
    assert counts.get("GET /v1/servers", 0) > 0, counts
    assert counts.get("POST /v1/servers", 0) == 0, counts
    assert any(e["reason"] == "BudgetBlocked" for e in events(cluster, ns, "second"))

    # Raising the limit above the spend lets it go within seconds.
    raised = time.monotonic()
    cluster.custom.patch_namespaced_custom_object(
        GROUP, VERSION, ns, BUDGET_PLURAL, "monthly", {"spec": {"limit": 100.0}}
    )
    wait_for(
        lambda: (
            (a := get_agent(cluster, ns, "second"))
            and condition(a, "ServerReady")["reason"] != "BudgetBlocked"
        ),
        15,
        what="second released",
    )
    print(f"limit raised -> Agent released: {time.monotonic() - raised:.2f}s")
    wait_phase(cluster, ns, "second", "Running", timeout=90)
    # The budget released the hibernated one too: it wakes with its desiredState running.
    woke = wait_phase(cluster, ns, "first", "Running", timeout=90)
    assert "aura.dev/hibernated-by-budget" not in (woke["metadata"].get("annotations") or {})
    assert "BudgetReleased" in [e["reason"] for e in events(cluster, ns, "first")]
    status = wait_for(
        lambda: (s := budget_status(cluster, ns, "monthly")).get("blocking") is False and s,
        15,
        what="budget no longer blocking",
    )
    assert not any(t["active"] for t in status["thresholds"])
    notified = cluster.core.list_namespaced_event(
        ns, field_selector="involvedObject.name=monthly"
    ).items
    assert {"BudgetNotify", "BudgetBlockNew", "BudgetHibernate"} <= {e.reason for e in notified}


def test_project_server_limit_is_a_clear_condition(
    cluster: Cluster, namespace: str, sandbox: Sandbox, start_operator: Any
) -> None:
    cluster.kubectl("wait", "--for=condition=Established", "crd/agentbudgets.aura.dev")
    sandbox.inject(
        "http_error",
        status=403,
        code="resource_limit_exceeded",
        message="server limit exceeded",
        method="POST",
        path=r"^/v1/servers$",
        count=None,
    )
    start_operator(**COST_FLAGS)
    apply(cluster, budget(namespace, "limits", 100.0, [{"percent": 80, "action": "Notify"}]))
    apply(cluster, agent_manifest("capped", namespace))
    agent = wait_for(
        lambda: (
            (a := get_agent(cluster, namespace, "capped"))
            and a.get("status", {}).get("conditions")
            and condition(a, "ServerReady")["reason"] == "ProjectServerLimit"
            and a
        ),
        30,
        what="the project limit condition",
    )
    assert agent["status"]["phase"] == "Queued"
    assert "raise the limit" in condition(agent, "ServerReady")["message"]
    status = wait_for(
        lambda: (s := budget_status(cluster, namespace, "limits"))
        and any(c["type"] == "ProjectServerLimit" and c["status"] == "True"
                for c in s.get("conditions", []))
        and s,
        30,
        what="the budget's ProjectServerLimit condition",
    )  # fmt: skip
    assert "capped" in next(
        c["message"] for c in status["conditions"] if c["type"] == "ProjectServerLimit"
    )
