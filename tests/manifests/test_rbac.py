"""RBAC on a real kube-apiserver: what each service account may and may not do, and that it
holds nothing more than the table says."""

from __future__ import annotations

import json

import pytest

from tests.kube import Cluster
from tests.manifests.support import (
    BRIDGE,
    CUSTOMER_NS,
    NOBODY,
    OPERATOR,
    SYSTEM_NS,
    Obj,
    kubectl,
)

pytestmark = pytest.mark.integration


# -- RBAC: what each service account may and may not do ------------------------------------

# (service account, verb, resource, scope, allowed). Scope: a namespace, "-A" for all
# namespaces at once, or "" for cluster-scoped resources.
PERMISSIONS: list[tuple[str, str, str, str, bool]] = [
    # operator: Agents and their status
    (OPERATOR, "get", "agents.aura.dev", CUSTOMER_NS, True),
    (OPERATOR, "list", "agents.aura.dev", "-A", True),
    (OPERATOR, "watch", "agents.aura.dev", "-A", True),
    (OPERATOR, "patch", "agents.aura.dev", CUSTOMER_NS, True),
    (OPERATOR, "patch", "agents.aura.dev/status", CUSTOMER_NS, True),
    # Golden images: the builder Agent of an AgentImage is created and deleted by the operator.
    (OPERATOR, "create", "agents.aura.dev", CUSTOMER_NS, True),
    (OPERATOR, "update", "agents.aura.dev", CUSTOMER_NS, False),
    (OPERATOR, "delete", "agents.aura.dev", CUSTOMER_NS, True),
    (OPERATOR, "watch", "agentimages.aura.dev", "-A", True),
    (OPERATOR, "patch", "agentimages.aura.dev/status", CUSTOMER_NS, True),
    (OPERATOR, "create", "agentimages.aura.dev", CUSTOMER_NS, False),
    (OPERATOR, "delete", "agentimages.aura.dev", CUSTOMER_NS, False),
    (OPERATOR, "watch", "agentpools.aura.dev", "-A", True),
    (OPERATOR, "patch", "agentpools.aura.dev/status", CUSTOMER_NS, True),
    (OPERATOR, "create", "agentpools.aura.dev", CUSTOMER_NS, False),
    (OPERATOR, "deletecollection", "agents.aura.dev", CUSTOMER_NS, False),
    (OPERATOR, "update", "agents.aura.dev/status", CUSTOMER_NS, False),
    # AgentBudgets: read and given a status, never created or deleted
    (OPERATOR, "list", "agentbudgets.aura.dev", CUSTOMER_NS, True),
    (OPERATOR, "patch", "agentbudgets.aura.dev/status", CUSTOMER_NS, True),
    (OPERATOR, "create", "agentbudgets.aura.dev", CUSTOMER_NS, False),
    (OPERATOR, "delete", "agentbudgets.aura.dev", CUSTOMER_NS, False),
    # operator: checkpoints (schedule creates and prunes) and restores
    (OPERATOR, "create", "agentcheckpoints.aura.dev", CUSTOMER_NS, True),
    (OPERATOR, "delete", "agentcheckpoints.aura.dev", CUSTOMER_NS, True),
    (OPERATOR, "patch", "agentcheckpoints.aura.dev/status", CUSTOMER_NS, True),
    (OPERATOR, "watch", "agentrestores.aura.dev", "-A", True),
    (OPERATOR, "patch", "agentrestores.aura.dev/status", CUSTOMER_NS, True),
    (OPERATOR, "create", "agentrestores.aura.dev", CUSTOMER_NS, False),
    (OPERATOR, "delete", "agentrestores.aura.dev", CUSTOMER_NS, False),
    # operator: Secrets, watched for the runtime Secret an Agent waits for
    (OPERATOR, "get", "secrets", CUSTOMER_NS, True),
    (OPERATOR, "create", "secrets", CUSTOMER_NS, True),
    (OPERATOR, "patch", "secrets", CUSTOMER_NS, True),
    (OPERATOR, "delete", "secrets", CUSTOMER_NS, True),
    (OPERATOR, "list", "secrets", CUSTOMER_NS, True),
    (OPERATOR, "list", "secrets", "-A", True),
    (OPERATOR, "watch", "secrets", "-A", True),
    (OPERATOR, "update", "secrets", CUSTOMER_NS, False),
    (OPERATOR, "deletecollection", "secrets", CUSTOMER_NS, False),
    # operator: Events, create only
    (OPERATOR, "create", "events", CUSTOMER_NS, True),
    (OPERATOR, "create", "events.events.k8s.io", CUSTOMER_NS, True),
    (OPERATOR, "list", "events", CUSTOMER_NS, False),
    (OPERATOR, "list", "events.events.k8s.io", CUSTOMER_NS, False),
    (OPERATOR, "delete", "events", CUSTOMER_NS, False),
    # operator: kopf itself
    (OPERATOR, "get", "clusterkopfpeerings.kopf.dev", "", True),
    (OPERATOR, "list", "clusterkopfpeerings.kopf.dev", "", True),
    (OPERATOR, "watch", "clusterkopfpeerings.kopf.dev", "", True),
    (OPERATOR, "patch", "clusterkopfpeerings.kopf.dev", "", True),
    (OPERATOR, "create", "clusterkopfpeerings.kopf.dev", "", False),
    (OPERATOR, "delete", "clusterkopfpeerings.kopf.dev", "", False),
    (OPERATOR, "patch", "kopfpeerings.kopf.dev", CUSTOMER_NS, True),
    (OPERATOR, "watch", "kopfpeerings.kopf.dev", CUSTOMER_NS, True),
    (OPERATOR, "list", "customresourcedefinitions.apiextensions.k8s.io", "", True),
    (OPERATOR, "watch", "customresourcedefinitions.apiextensions.k8s.io", "", True),
    (OPERATOR, "patch", "customresourcedefinitions.apiextensions.k8s.io", "", False),
    (OPERATOR, "delete", "customresourcedefinitions.apiextensions.k8s.io", "", False),
    (OPERATOR, "list", "namespaces", "", True),
    (OPERATOR, "watch", "namespaces", "", True),
    (OPERATOR, "create", "namespaces", "", False),
    (OPERATOR, "delete", "namespaces", "", False),
    # operator: nothing of the cluster's workloads or access control
    (OPERATOR, "create", "deployments.apps", CUSTOMER_NS, False),
    (OPERATOR, "patch", "deployments.apps", SYSTEM_NS, False),
    (OPERATOR, "list", "pods", CUSTOMER_NS, False),
    (OPERATOR, "create", "pods", CUSTOMER_NS, False),
    (OPERATOR, "create", "pods/exec", CUSTOMER_NS, False),
    (OPERATOR, "get", "configmaps", CUSTOMER_NS, False),
    (OPERATOR, "create", "configmaps", CUSTOMER_NS, False),
    (OPERATOR, "get", "nodes", "", False),
    (OPERATOR, "create", "serviceaccounts/token", SYSTEM_NS, False),
    (OPERATOR, "create", "rolebindings.rbac.authorization.k8s.io", CUSTOMER_NS, False),
    (OPERATOR, "escalate", "clusterroles.rbac.authorization.k8s.io", "", False),
    (OPERATOR, "impersonate", "serviceaccounts", SYSTEM_NS, False),
    # bridge: Agents without status; delete only to replace a returning customer's deleted
    # record (README "Retention after cancellation"); checkpoints read to find the retained one
    (BRIDGE, "get", "agents.aura.dev", CUSTOMER_NS, True),
    (BRIDGE, "list", "agents.aura.dev", "-A", True),
    (BRIDGE, "watch", "agents.aura.dev", "-A", True),
    (BRIDGE, "create", "agents.aura.dev", CUSTOMER_NS, True),
    (BRIDGE, "patch", "agents.aura.dev", CUSTOMER_NS, True),
    (BRIDGE, "update", "agents.aura.dev", CUSTOMER_NS, False),
    (BRIDGE, "delete", "agents.aura.dev", CUSTOMER_NS, True),
    (BRIDGE, "list", "agentcheckpoints.aura.dev", CUSTOMER_NS, True),
    (BRIDGE, "create", "agentcheckpoints.aura.dev", CUSTOMER_NS, False),
    (BRIDGE, "delete", "agentcheckpoints.aura.dev", CUSTOMER_NS, False),
    (BRIDGE, "deletecollection", "agents.aura.dev", CUSTOMER_NS, False),
    (BRIDGE, "patch", "agents.aura.dev/status", CUSTOMER_NS, False),
    (BRIDGE, "get", "agents.aura.dev/status", CUSTOMER_NS, False),
    (BRIDGE, "create", "events", CUSTOMER_NS, True),
    (BRIDGE, "create", "events.events.k8s.io", CUSTOMER_NS, True),
    (BRIDGE, "list", "events", CUSTOMER_NS, False),
    (BRIDGE, "list", "events.events.k8s.io", CUSTOMER_NS, True),
    (BRIDGE, "list", "events.events.k8s.io", "-A", True),
    (BRIDGE, "watch", "events.events.k8s.io", CUSTOMER_NS, False),
    (BRIDGE, "delete", "events.events.k8s.io", CUSTOMER_NS, False),
    # bridge: no Secrets at all, nothing else
    (BRIDGE, "get", "secrets", SYSTEM_NS, False),
    (BRIDGE, "get", "secrets", CUSTOMER_NS, False),
    (BRIDGE, "list", "secrets", "-A", False),
    (BRIDGE, "create", "secrets", CUSTOMER_NS, False),
    (BRIDGE, "list", "configmaps", CUSTOMER_NS, False),
    (BRIDGE, "list", "pods", CUSTOMER_NS, False),
    (BRIDGE, "list", "namespaces", "", False),
    (BRIDGE, "list", "customresourcedefinitions.apiextensions.k8s.io", "", False),
    (BRIDGE, "patch", "clusterkopfpeerings.kopf.dev", "", False),
    (BRIDGE, "create", "deployments.apps", CUSTOMER_NS, False),
]


def can_i(cluster: Cluster, who: str, verb: str, resource: str, scope: str) -> bool:
    resource, _, subresource = resource.partition("/")
    args = ["auth", "can-i", verb, resource, f"--as={who}"]
    if subresource:
        args.append(f"--subresource={subresource}")
    if scope == "-A":
        args.append("--all-namespaces")
    elif scope:
        args += ["-n", scope]
    proc = kubectl(cluster, *args)
    answer = proc.stdout.strip()
    assert answer in {"yes", "no"}, f"kubectl {' '.join(args)}: {proc.stdout}{proc.stderr}"
    return answer == "yes"


@pytest.mark.parametrize(
    ("who", "verb", "resource", "scope", "allowed"),
    PERMISSIONS,
    ids=[f"{w.rsplit(':', 1)[1]}-{v}-{r}-{s or 'cluster'}-{a}" for w, v, r, s, a in PERMISSIONS],
)
def test_service_account_can_or_cannot(
    rbac_installed: Cluster, who: str, verb: str, resource: str, scope: str, allowed: bool
) -> None:
    assert can_i(rbac_installed, who, verb, resource, scope) is allowed


# The complete grant of each service account, beyond what any authenticated identity has:
# (API group, resource, verb). A rule added to the manifests without a reason fails here.
EXPECTED_GRANTS: dict[str, set[tuple[str, str, str]]] = {
    OPERATOR: {
        *{("aura.dev", "agents", v) for v in ("get", "list", "watch", "patch", "create", "delete")},
        *{("aura.dev", "agents/status", v) for v in ("get", "patch")},
        *{("aura.dev", "agentimages", v) for v in ("get", "list", "watch", "patch")},
        *{("aura.dev", "agentimages/status", v) for v in ("get", "patch")},
        *{("aura.dev", "agentpools", v) for v in ("get", "list", "watch", "patch")},
        *{("aura.dev", "agentpools/status", v) for v in ("get", "patch")},
        *{("aura.dev", "agentbudgets", v) for v in ("get", "list", "watch", "patch")},
        *{("aura.dev", "agentbudgets/status", v) for v in ("get", "patch")},
        *{
            ("aura.dev", "agentcheckpoints", v)
            for v in ("get", "list", "watch", "patch", "create", "delete")
        },
        *{("aura.dev", "agentrestores", v) for v in ("get", "list", "watch", "patch")},
        *{
            ("aura.dev", r, v)
            for r in ("agentcheckpoints/status", "agentrestores/status")
            for v in ("get", "patch")
        },
        *{("", "secrets", v) for v in ("get", "list", "watch", "create", "patch", "delete")},
        ("", "events", "create"),
        ("events.k8s.io", "events", "create"),
        *{("kopf.dev", "kopfpeerings", v) for v in ("get", "list", "watch", "patch")},
        *{("kopf.dev", "clusterkopfpeerings", v) for v in ("get", "list", "watch", "patch")},
        *{
            ("apiextensions.k8s.io", "customresourcedefinitions", v)
            for v in ("get", "list", "watch")
        },
        *{("", "namespaces", v) for v in ("list", "watch")},
    },
    BRIDGE: {
        *{("aura.dev", "agents", v) for v in ("get", "list", "watch", "create", "patch", "delete")},
        *{("aura.dev", "agentcheckpoints", v) for v in ("get", "list")},
        ("", "events", "create"),
        *{("events.k8s.io", "events", v) for v in ("create", "list")},
    },
}


def granted(cluster: Cluster, who: str, namespace: str) -> tuple[set[tuple[str, ...]], Obj]:
    """Every (group, resource, verb) `who` may use in `namespace`, as the apiserver says."""
    review = json.dumps(
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectRulesReview",
            "spec": {"namespace": namespace},
        }
    )
    proc = kubectl(
        cluster, "create", "--validate=false", f"--as={who}", "-o", "json", "-f", "-", input=review
    )
    assert proc.returncode == 0, proc.stderr
    status: Obj = json.loads(proc.stdout)["status"]
    assert not status.get("incomplete"), status
    rules = set()
    for rule in status["resourceRules"]:
        assert not rule.get("resourceNames"), rule
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                rules.update((group, resource, verb) for verb in rule["verbs"])
    return rules, status


def non_resource(status: Obj) -> set[tuple[str, str]]:
    return {
        (url, verb)
        for rule in status["nonResourceRules"]
        for url in rule["nonResourceURLs"]
        for verb in rule["verbs"]
    }


@pytest.mark.parametrize("who", [OPERATOR, BRIDGE], ids=["operator", "bridge"])
def test_service_account_has_nothing_more(rbac_installed: Cluster, who: str) -> None:
    baseline, base_status = granted(rbac_installed, NOBODY, CUSTOMER_NS)
    rules, status = granted(rbac_installed, who, CUSTOMER_NS)
    assert rules - baseline == EXPECTED_GRANTS[who]
    assert not any("*" in part for rule in rules for part in rule)
    assert non_resource(status) == non_resource(base_status)
