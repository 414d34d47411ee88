"""The order of an Agent's history, as every view shows it (`aura.history.ordered`)."""

from __future__ import annotations

from datetime import UTC, datetime

from aura import history


def _v1(reason: str, event_time: str | None, rv: str = "1", **extra: object) -> dict[str, object]:
    return {
        "regarding": {"namespace": "ns", "name": "a"},
        "reason": reason,
        "note": f"{reason} note",
        "type": "Normal",
        "eventTime": event_time,
        "reportingController": "aura.dev/operator",
        "metadata": {"resourceVersion": rv, "creationTimestamp": "2026-12-03T06:00:01Z"},
        **extra,
    }


def test_microsecond_event_times_order_events_of_one_second() -> None:
    # Listed in the apiserver's (name) order, which is not the order they happened in.
    events = [
        _v1("Running", "2026-12-03T06:00:01.912000Z", rv="9"),
        _v1("Networking", "2026-12-03T06:00:01.000004Z", rv="30"),
        _v1("Configuring", "2026-12-03T06:00:01.000003+00:00", rv="40"),
    ]
    entries = history.ordered(events)
    assert [e.reason for e in entries] == ["Configuring", "Networking", "Running"]
    assert entries[0].time == datetime(2026, 12, 3, 6, 0, 1, 3, tzinfo=UTC)
    assert entries[0].message == "Configuring note"
    assert entries[0].reporter == "aura.dev/operator"


def test_core_events_fall_back_to_their_timestamps_then_write_order() -> None:
    core = {
        "involvedObject": {"namespace": "ns", "name": "a"},
        "message": "from kubectl",
        "source": {"component": "someone"},
        "metadata": {"resourceVersion": "12"},
    }
    events = [
        {**core, "reason": "Second", "lastTimestamp": "2026-12-03T06:00:02Z"},
        {**core, "reason": "Repeated", "firstTimestamp": "2026-12-03T06:00:00Z",
         "series": {"lastObservedTime": "2026-12-03T06:00:03.5Z"}},
        {**core, "reason": "SameSecondLater", "lastTimestamp": "2026-12-03T06:00:01Z",
         "metadata": {"resourceVersion": "15"}},
        {**core, "reason": "SameSecondEarlier", "lastTimestamp": "2026-12-03T06:00:01Z",
         "metadata": {"resourceVersion": "11"}},
        {**core, "reason": "OnlyCreated",
         "metadata": {"creationTimestamp": "2026-12-03T05:00:00Z"}},
        _v1("Micro", "2026-12-03T06:00:01.500000Z"),
    ]  # fmt: skip
    entries = history.ordered(events)
    assert [e.reason for e in entries] == [
        "OnlyCreated", "SameSecondEarlier", "SameSecondLater", "Micro", "Second", "Repeated",
    ]  # fmt: skip
    assert entries[0].reporter == "someone"
    assert history.regarding(events[0]) == ("ns", "a")


def test_an_event_without_any_time_sorts_first_instead_of_failing() -> None:
    entries = history.ordered([_v1("Timed", "2026-12-03T06:00:01Z"), {"reason": "Bare"}])
    assert [e.reason for e in entries] == ["Bare", "Timed"]
    assert entries[0].time is None
