"""Invalid Agent specs shared by the model unit tests and the apiserver admission tests, so
the pydantic models and the generated CRD are held to the same rules."""

from __future__ import annotations

from typing import Any

import pytest


def valid_spec() -> dict[str, Any]:
    return {
        "desiredState": "running",
        "server": {"type": "cx22", "location": "nbg1", "image": "ubuntu-24.04"},
        "runtime": {"openclawVersion": "2026.3.1", "secretRef": {"name": "agent-keys"}},
        "tailscale": {"tags": ["tag:aura-agent"], "hostname": "agent-1"},
        "billing": {"customerId": "cus_Q1w2e3", "subscriptionId": "sub_A1b2C3"},
    }


def with_change(path: str, value: Any) -> dict[str, Any]:
    """`valid_spec()` with the dotted `path` set to `value`."""
    spec = valid_spec()
    *parents, leaf = path.split(".")
    node = spec
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return spec


# (case id, spec, the field the error must name)
BAD_SPECS = [
    pytest.param(with_change("desiredState", "paused"), "desiredState", id="bad-desired-state"),
    pytest.param(with_change("server.type", "CX22!"), "server.type", id="bad-server-type"),
    pytest.param(
        with_change("server.location", "nbg1-dc3"), "server.location", id="datacenter-not-location"
    ),
    pytest.param(with_change("server.image", "Ubuntu 24.04"), "server.image", id="bad-image"),
    pytest.param(with_change("runtime.gatewayPort", 80), "runtime.gatewayPort", id="port-too-low"),
    pytest.param(
        with_change("runtime.gatewayPort", "http"), "runtime.gatewayPort", id="port-not-int"
    ),
    pytest.param(
        with_change("runtime.openclawVersion", "latest"),
        "runtime.openclawVersion",
        id="unpinned-version",
    ),
    pytest.param(with_change("runtime.secretRef", {}), "runtime.secretRef.name", id="ref-no-name"),
    pytest.param(with_change("tailscale.tags", ["web"]), "tailscale.tags[0]", id="bad-tag"),
    pytest.param(with_change("tailscale.tags", []), "tailscale.tags", id="no-tags"),
    pytest.param(
        with_change("tailscale.hostname", "Agent_1"), "tailscale.hostname", id="bad-hostname"
    ),
    pytest.param(
        with_change("billing.customerId", "cust_42"), "billing.customerId", id="bad-customer"
    ),
    pytest.param(
        with_change("billing.subscriptionId", "sub-42"),
        "billing.subscriptionId",
        id="bad-subscription",
    ),
]
