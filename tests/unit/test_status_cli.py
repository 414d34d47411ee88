"""Pure parts of `aura status`: ages, row building and table layout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aura.status_cli import (
    agent_rows,
    checkpoint_cell,
    fleet_total,
    hibernation_cell,
    hibernation_total,
    human_age,
    render_table,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "text"), [(5, "5s"), (59, "59s"), (60, "1m"), (7200, "2h"), (3 * 86400, "3d")]
)
def test_human_age(seconds: int, text: str) -> None:
    assert human_age(NOW - timedelta(seconds=seconds), NOW) == text


def test_rows_pick_the_latest_event_per_agent() -> None:
    agents = [
        {"metadata": {"namespace": "b", "name": "y"}, "spec": {"desiredState": "stopped"}},
        {
            "metadata": {"namespace": "a", "name": "x"},
            "spec": {"desiredState": "running"},
            "status": {"phase": "Running", "phaseSince": "2026-11-21T11:59:00Z"},
        },
    ]
    events = [
        {"involvedObject": {"namespace": "a", "name": "x"}, "reason": "Late", "message": "2",
         "lastTimestamp": "2026-11-21T11:58:00Z"},
        {"involvedObject": {"namespace": "a", "name": "x"}, "reason": "Early", "message": "1",
         "lastTimestamp": "2026-11-21T11:00:00Z"},
    ]  # fmt: skip
    rows = agent_rows(agents, events, NOW)
    assert rows[0] == [
        "a",
        "x",
        "Running",
        "1m",
        "running",
        "-",
        "-",
        "-",
        "-",
        "-",
        "-",
        "-",
        "Late: 2",
    ]
    assert rows[1] == ["b", "y", "-", "-", "stopped", "-", "-", "-", "-", "-", "-", "-", "-"]


def test_checkpoint_cell_shows_last_and_next() -> None:
    status = {
        "checkpoints": {
            "lastCheckpointTime": (NOW - timedelta(hours=3)).isoformat(),
            "nextCheckpointTime": (NOW + timedelta(hours=21)).isoformat(),
        }
    }
    assert checkpoint_cell(status, NOW) == "last 3h ago, next in 21h"
    assert checkpoint_cell({}, NOW) == "-"


def test_table_aligns_columns() -> None:
    assert render_table(["A", "LONG"], [["xyz", "1"]]) == "A     LONG\nxyz   1"


def test_cost_columns_and_fleet_total() -> None:
    cost = {"currency": "EUR", "monthToDate": 1.234, "projectedMonth": 4.29, "margin": 5.71}
    agents = [
        {"metadata": {"namespace": "a", "name": "x"}, "spec": {}, "status": {"cost": cost}},
        {"metadata": {"namespace": "a", "name": "y"}, "spec": {}, "status": {}},
    ]
    rows = agent_rows(agents, [], NOW)
    assert rows[0][7:10] == ["1.23 EUR", "4.29", "5.71"]
    assert rows[1][7:10] == ["-", "-", "-"]
    # One priced Agent: the totals are its own figures.
    assert fleet_total(agents) == (
        "TOTAL (net, EUR): month to date 1.23, projected 4.29, margin 5.71 (1 with a known price)"
    )
    assert fleet_total(agents[1:]) is None
    unpriced = {**cost, "margin": None}
    agents[0]["status"]["cost"] = unpriced
    assert (fleet_total(agents) or "").endswith("margin -")


def test_hibernated_agents_show_since_when_and_what_they_save() -> None:
    hib = {"state": "Hibernated", "since": (NOW - timedelta(hours=3)).isoformat(),
           "monthlySaving": 4.2656, "currency": "EUR", "checkpoint": "x-hibernate-1"}  # fmt: skip
    agents = [
        {"metadata": {"namespace": "a", "name": "x"}, "status": {"hibernation": hib}},
        {"metadata": {"namespace": "a", "name": "y"}, "status": {"hibernation": dict(hib)}},
        {"metadata": {"namespace": "a", "name": "z"},
         "status": {"hibernation": {**hib, "state": "Waking"}}},
        {"metadata": {"namespace": "a", "name": "w"}, "status": {}},
    ]  # fmt: skip
    assert hibernation_cell(agents[0]["status"], NOW) == "3h, saves 4.27 EUR/mo"
    assert hibernation_cell(agents[2]["status"], NOW) == "waking"
    assert hibernation_cell({}, NOW) == "-"
    assert [r[11] for r in agent_rows(agents, [], NOW)] == [
        "-",
        "3h, saves 4.27 EUR/mo",
        "3h, saves 4.27 EUR/mo",
        "waking",
    ]
    assert hibernation_total(agents) == "HIBERNATED: 2 Agent(s), saving 8.53 EUR/month (net)"
    assert hibernation_total(agents[3:]) is None
