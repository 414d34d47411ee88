"""The fleet API and its actions, on a real bridge and apiserver."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client as kclient

from aura.bridge import tokens
from aura.bridge.fleet_api import allowed_actions
from tests.bridge.conftest import TOKEN, Bridge, checkout
from tests.bridge.test_status_api import set_phase
from tests.kube import Cluster

KEYS = (("k1", "f" * 40),)
OPERATOR = {"Authorization": f"Bearer {TOKEN}"}


def test_allowed_actions_follow_the_phase() -> None:
    assert allowed_actions("Running", "running") == ["stop", "hibernate"]
    assert allowed_actions("Stopped", "stopped") == ["start", "hibernate"]
    assert allowed_actions("Hibernated", "hibernated") == ["start"]
    assert allowed_actions("Stopping", "stopped") == []  # wait until it is stopped
    assert allowed_actions("Running", "stopped") == []  # asked to stop, not stopped yet
    assert allowed_actions("Suspended", "suspended") == []  # billing owns suspension
    assert allowed_actions("Deleted", "deleted") == []
    assert "stop" in allowed_actions("Failed", "running")


@pytest.mark.integration
async def test_fleet_lists_every_agent_and_writes_only_with_the_write_scope(
    make_bridge: Any, cluster: Cluster
) -> None:
    bridge: Bridge = await make_bridge(token_keys=KEYS)
    _, customer, _ = await checkout(bridge, "fleet-a")
    await checkout(bridge, "fleet-b")
    set_phase(cluster, bridge.namespace, "fleet-a", "Running", "203.0.113.9")

    fleet = await bridge.http.get("/v1/fleet", headers=OPERATOR)
    assert fleet.status_code == 200, fleet.text
    rows = {r["name"]: r for r in fleet.json()["items"] if r["namespace"] == bridge.namespace}
    assert set(rows) == {"fleet-a", "fleet-b"}
    assert rows["fleet-a"]["phase"] == "Running"
    assert rows["fleet-a"]["customerId"] == customer
    assert rows["fleet-a"]["desiredState"] == "running"
    assert "stop" in rows["fleet-a"]["actions"]
    assert fleet.json()["canWrite"] is False

    path = f"/v1/agents/{bridge.namespace}/fleet-a/actions/stop"
    refused = await bridge.http.post(path, headers=OPERATOR)
    assert refused.status_code == 403 and "fleet:write" in refused.json()["detail"]
    assert bridge.agent("fleet-a")["spec"]["desiredState"] == "running"

    writer = tokens.mint(KEYS, tokens.FLEET_WRITE, subject="alice@example.com")
    auth = {"Authorization": f"Bearer {writer}"}
    wrong = await bridge.http.post(
        f"/v1/agents/{bridge.namespace}/fleet-a/actions/start", headers=auth
    )
    assert wrong.status_code == 409 and "possible now: stop" in wrong.json()["detail"]
    done = await bridge.http.post(path, headers=auth)
    assert done.status_code == 200, done.text
    agent = bridge.agent("fleet-a")
    assert agent["spec"]["desiredState"] == "stopped"
    annotations = agent["metadata"]["annotations"]
    assert annotations["aura.dev/last-action"] == "stop"
    assert annotations["aura.dev/last-action-by"] == "alice@example.com"
    events = kclient.EventsV1Api(cluster.api).list_namespaced_event(
        bridge.namespace, field_selector="regarding.name=fleet-a"
    )
    notes = [(e.reason, e.note) for e in events.items]
    assert ("ManualStop", "alice@example.com asked to stop this agent from the fleet page") in notes

    again = await bridge.http.get("/v1/fleet", headers=auth)
    row = next(r for r in again.json()["items"] if r["name"] == "fleet-a")
    assert again.json()["canWrite"] is True and again.json()["subject"] == "alice@example.com"
    assert row["lastEvent"]["reason"] == "ManualStop"
    assert row["actions"] == []  # stopping: nothing to do until it is stopped
    missing = await bridge.http.post(
        f"/v1/agents/{bridge.namespace}/nope/actions/stop", headers=auth
    )
    assert missing.status_code == 404
    bogus = await bridge.http.post(
        f"/v1/agents/{bridge.namespace}/fleet-a/actions/delete", headers=auth
    )
    assert bogus.status_code == 422
