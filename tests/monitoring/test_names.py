"""The dashboard and the rules name real series: checked against the real `/metrics` pages of
a running operator (tests/operator) and bridge (tests/bridge); here, the parser they use."""

from __future__ import annotations

from tests.monitoring.names import exposed, referenced


def test_the_dashboard_and_rules_name_operator_and_bridge_series() -> None:
    names = referenced()
    assert {"aura_agents", "aura_rollbacks_total", "aura_operator_active"} <= names
    assert {"aura_bridge_webhook_duration_seconds_bucket"} <= names


def test_exposed_names_cover_families_without_samples() -> None:
    text = (
        "# HELP aura_x_total Things.\n# TYPE aura_x_total counter\n"
        "# HELP aura_h Hist.\n# TYPE aura_h histogram\n"
        'aura_h_bucket{le="+Inf"} 1.0\naura_h_count 1.0\naura_h_sum 0.5\n'
    )
    names = exposed(text)
    assert {"aura_x", "aura_x_total", "aura_h_bucket", "aura_h_sum"} <= names
    assert "aura_y" not in names
