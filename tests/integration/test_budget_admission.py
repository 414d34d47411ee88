"""The AgentBudget CRD on a real kube-apiserver: defaults, and bad input rejected naming the
field; the Agent's `spec.billing.price` schema too."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from aura.cost.budget_models import BUDGET_PLURAL
from aura.models import GROUP, PLURAL, VERSION
from tests.kube import Cluster

pytestmark = pytest.mark.integration


def budget(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AgentBudget",
        "metadata": {"name": name},
        "spec": spec,
    }


def create(cluster: Cluster, ns: str, body: dict[str, Any], plural: str = BUDGET_PLURAL) -> Any:
    return cluster.custom.create_namespaced_custom_object(GROUP, VERSION, ns, plural, body)


def test_budget_gets_its_defaults(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("wait", "--for=condition=Established", "crd/agentbudgets.aura.dev")
    made = create(
        cluster,
        namespace,
        budget("ok", {"limit": 50, "thresholds": [{"percent": 80, "action": "Notify"}]}),
    )
    assert made["spec"]["currency"] == "EUR"
    assert made["spec"]["resetDay"] == 1
    assert made["spec"]["thresholds"][0]["projected"] is False
    printed = cluster.kubectl("get", "agentbudgets", "-n", namespace)
    assert "LIMIT" in printed and "BLOCKING" in printed


NOTIFY = [{"percent": 1, "action": "Notify"}]
BAD_BUDGETS: dict[str, tuple[dict[str, Any], str]] = {
    "zero-limit": ({"limit": 0, "thresholds": NOTIFY}, "spec.limit"),
    "no-thresholds": ({"limit": 5, "thresholds": []}, "spec.thresholds"),
    "unknown-action": ({"limit": 5, "thresholds": [{"percent": 8, "action": "Delete"}]}, "action"),
    "reset-day": ({"limit": 5, "resetDay": 31, "thresholds": NOTIFY}, "resetDay"),
    "currency": ({"limit": 5, "currency": "euro", "thresholds": NOTIFY}, "currency"),
    "order": (
        {"limit": 5, "thresholds": [{"percent": 8, "action": "Hibernate", "order": "Random"}]},
        "order",
    ),
    "no-limit": ({"thresholds": NOTIFY}, "limit"),
}


@pytest.mark.parametrize(("spec", "field"), BAD_BUDGETS.values(), ids=BAD_BUDGETS.keys())
def test_bad_budget_is_rejected_naming_the_field(
    cluster: Cluster, namespace: str, spec: dict[str, Any], field: str
) -> None:
    cluster.kubectl("wait", "--for=condition=Established", "crd/agentbudgets.aura.dev")
    with pytest.raises(ApiException) as err:
        create(cluster, namespace, budget("bad", spec))
    assert err.value.status == 422
    assert field in str(err.value.body)


def test_agent_price_schema(cluster: Cluster, namespace: str) -> None:
    agent = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Agent",
        "metadata": {"name": "priced"},
        "spec": {
            "desiredState": "stopped",
            "billing": {"price": {"unitAmount": 2900, "currency": "eur", "interval": "month"}},
        },
    }
    with pytest.raises(ApiException) as err:
        create(cluster, namespace, agent, PLURAL)
    assert "spec.billing.price.currency" in str(err.value.body)
    agent["spec"]["billing"]["price"]["currency"] = "EUR"
    made = create(cluster, namespace, agent, PLURAL)
    assert made["spec"]["billing"]["price"]["intervalCount"] == 1
