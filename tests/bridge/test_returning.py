"""A returning customer (retention after cancellation, `--retain-after-delete`): a new checkout
naming the same customer and agent name replaces the old `deleted` record with an Agent whose
`spec.source.checkpoint` is the final checkpoint the operator kept. On the real apiserver; the
operator's side (taking the checkpoint, creating the server from it, the data on its disk,
erasure) is tests/operator/test_operator_retention.py."""

from __future__ import annotations

from typing import Any

from aura.bridge.agents import LABEL_FINAL_CHECKPOINT, LABEL_RETAINED_AGENT
from aura.controller.checkpoints import final
from aura.models import GROUP, VERSION
from tests.bridge.conftest import Bridge, checkout_obj, make_event, new_id

CUSTOMER = "cus_returning0001"


def _record(bridge: Bridge, name: str, customer: str) -> dict[str, Any]:
    """The `deleted` record the operator leaves of a cancelled Agent (status.deletedAt set)."""
    custom, ns = bridge.cluster.custom, bridge.namespace
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Agent",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {
                "aura.dev/stripe-customer": customer,
                "aura.dev/stripe-subscription": "sub_old1",
            },
        },
        "spec": {"desiredState": "deleted", "billing": {"customerId": customer}},
    }
    created = custom.create_namespaced_custom_object(GROUP, VERSION, ns, "agents", body)
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, ns, "agents", name, {"status": {"deletedAt": "2026-01-01T00:00:00Z"}}
    )
    return dict(created)


def _final_checkpoint(bridge: Bridge, agent: dict[str, Any], customer: str) -> str:
    meta = agent["metadata"]
    name = final.final_name(meta["name"], meta["uid"])
    custom, ns = bridge.cluster.custom, bridge.namespace
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AgentCheckpoint",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {
                final.LABEL_FINAL: "true",
                final.LABEL_AGENT: meta["name"],
                final.LABEL_CUSTOMER: customer,
            },
        },
        "spec": {"agentName": meta["name"], "deletionPolicy": "Retain"},
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, "agentcheckpoints", body)
    status = {"phase": "Succeeded", "readyToUse": True, "imageID": 4242,
              "takenAt": "2026-01-01T00:00:00Z"}  # fmt: skip
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, ns, "agentcheckpoints", name, {"status": status}
    )
    return name


async def _checkout(bridge: Bridge, name: str, customer: str) -> tuple[str, str]:
    sub = new_id("sub")
    bridge.stripe.put(sub, "active", customer)
    response = await bridge.send(
        make_event("checkout.session.completed", checkout_obj(sub, customer, name))
    )
    assert response.status_code == 200, response.text
    return sub, str(response.json()["outcome"])


def test_the_bridge_and_the_operator_agree_on_the_labels() -> None:
    assert (LABEL_FINAL_CHECKPOINT, LABEL_RETAINED_AGENT) == (final.LABEL_FINAL, final.LABEL_AGENT)


async def test_a_returning_customer_gets_an_agent_from_the_retained_checkpoint(
    bridge: Bridge,
) -> None:
    old = _record(bridge, "comeback", CUSTOMER)
    checkpoint = _final_checkpoint(bridge, old, CUSTOMER)

    # Someone else naming the same agent gets nothing, and the record stays.
    _, outcome = await _checkout(bridge, "comeback", "cus_stranger0001")
    assert outcome == "invalid"
    assert bridge.agent("comeback")["metadata"]["uid"] == old["metadata"]["uid"]

    sub, outcome = await _checkout(bridge, "comeback", CUSTOMER)
    assert outcome == "created"
    agent = bridge.agent("comeback")
    assert agent["metadata"]["uid"] != old["metadata"]["uid"]
    assert agent["spec"]["source"] == {"checkpoint": checkpoint}
    assert agent["spec"]["desiredState"] == "running"
    assert agent["metadata"]["labels"]["aura.dev/stripe-subscription"] == sub


async def test_without_a_retained_checkpoint_the_deleted_record_stays(bridge: Bridge) -> None:
    old = _record(bridge, "gone", CUSTOMER)
    _, outcome = await _checkout(bridge, "gone", CUSTOMER)
    assert outcome == "invalid"
    agent = bridge.agent("gone")
    assert agent["metadata"]["uid"] == old["metadata"]["uid"]
    assert "source" not in agent["spec"]
