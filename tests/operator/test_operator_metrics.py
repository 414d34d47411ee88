"""Every operator series the Grafana dashboard and the alert rules name exists in the real
`/metrics` page of a running operator (manifests/monitoring)."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Callable

import pytest

from tests.kube import Cluster
from tests.monitoring.names import exposed, referenced
from tests.operator.harness import OperatorProcess, agent_manifest, apply, wait_phase

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_dashboard_and_rules_name_real_operator_series(
    cluster: Cluster, namespace: str, start_operator: Callable[..., OperatorProcess]
) -> None:
    port = _free_port()
    start_operator(metrics_port=str(port))
    apply(cluster, agent_manifest("metered", namespace))
    wait_phase(cluster, namespace, "metered", "Running")
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()

    wanted = {n for n in referenced() if not n.startswith("aura_bridge_")}
    assert wanted, "the dashboard names no operator series"
    missing = wanted - exposed(text)
    assert not missing, f"named by the dashboard or rules but not exported: {sorted(missing)}"
    # The per-Agent phase clock carries this Agent, in the phase it is in.
    assert (
        f'aura_agent_phase_since_timestamp_seconds{{agent="metered",namespace="{namespace}",'
        'phase="Running"}' in text
    )
    assert "aura_operator_active 1.0" in text
