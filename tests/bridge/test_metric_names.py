"""Every bridge series the Grafana dashboard and the alert rules name exists in the real
`/metrics` page of a bridge that has handled a delivery (manifests/monitoring)."""

from __future__ import annotations

import pytest

from tests.bridge.conftest import Bridge, checkout
from tests.monitoring.names import exposed, referenced

pytestmark = pytest.mark.integration


async def test_dashboard_and_rules_name_real_bridge_series(bridge: Bridge) -> None:
    await checkout(bridge, "metered")
    text = (await bridge.http.get("/metrics")).text
    wanted = {n for n in referenced() if n.startswith("aura_bridge_")}
    assert len(wanted) >= 5
    missing = wanted - exposed(text)
    assert not missing, f"named by the dashboard or rules but not exported: {sorted(missing)}"
