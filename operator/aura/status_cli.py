"""`aura status`: a terminal view of Agents, their phase, how long they have been in it, their
addresses and what last happened to them; `--events` prints one Agent's history.

It reads only what the operator publishes (Agent status and Kubernetes Events), so it works
the same against any cluster the current `KUBECONFIG` reaches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import click
from kubernetes_asyncio import client, config

from aura import history
from aura.models import GROUP, PLURAL, VERSION


def human_age(since: datetime | None, now: datetime) -> str:
    """`kubectl`-style age: 42s, 7m, 3h, 5d; `-` when unknown."""
    if since is None:
        return "-"
    seconds = max(0, int((now - since).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def agent_rows(
    agents: Iterable[dict[str, Any]], events: Iterable[dict[str, Any]], now: datetime
) -> list[list[str]]:
    """One row per Agent: namespace, name, phase, age in phase, desired, IPs, cost
    (month to date, projected, margin), checkpoints, hibernation, last event."""
    latest: dict[tuple[str, str], history.Entry] = {}
    by_agent: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for event in events:
        by_agent.setdefault(history.regarding(event), []).append(event)
    for key, theirs in by_agent.items():
        latest[key] = history.ordered(theirs)[-1]
    rows = []
    for agent in sorted(agents, key=lambda a: (a["metadata"]["namespace"], a["metadata"]["name"])):
        meta, spec, status = agent["metadata"], agent.get("spec", {}), agent.get("status", {})
        last = latest.get((meta["namespace"], meta["name"]))
        rows.append(
            [
                meta["namespace"],
                meta["name"],
                status.get("phase") or "-",
                human_age(history.parse_time(status.get("phaseSince")), now),
                spec.get("desiredState", "-"),
                (status.get("server") or {}).get("ipv4") or "-",
                (status.get("tailscale") or {}).get("ipv4") or "-",
                *cost_cells(status.get("cost")),
                checkpoint_cell(status, now),
                hibernation_cell(status, now),
                f"{last.reason}: {last.message}"[:80] if last else "-",
            ]
        )
    return rows


def _money(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, (int, float)) else "-"


def cost_cells(cost: Any) -> list[str]:
    """COST MTD, PROJECTED, MARGIN (net, with the currency on the first) from `status.cost`."""
    if not isinstance(cost, dict) or cost.get("monthToDate") is None:
        return ["-", "-", "-"]
    currency = cost.get("currency") or ""
    return [
        f"{_money(cost.get('monthToDate'))} {currency}".strip(),
        _money(cost.get("projectedMonth")),
        _money(cost.get("margin")),
    ]


def fleet_total(agents: Iterable[dict[str, Any]]) -> str | None:
    """`TOTAL month-to-date / projected / margin` over the listed Agents, or None."""
    mtd = projected = margin = 0.0
    priced = 0
    currencies = set()
    for agent in agents:
        cost = (agent.get("status") or {}).get("cost") or {}
        if cost.get("monthToDate") is None:
            continue
        currencies.add(cost.get("currency") or "")
        mtd += cost["monthToDate"]
        projected += cost.get("projectedMonth") or 0.0
        if cost.get("margin") is not None:
            margin += cost["margin"]
            priced += 1
    if not currencies:
        return None
    unit = "/".join(sorted(currencies))
    margin_text = f"margin {margin:.2f} ({priced} with a known price)" if priced else "margin -"
    return (
        f"TOTAL (net, {unit}): month to date {mtd:.2f}, projected {projected:.2f}, " + margin_text
    )


def checkpoint_cell(status: dict[str, Any], now: datetime) -> str:
    """`spec.checkpoints` at a glance: `last 3h ago, next in 21h`; `-` without a schedule."""
    schedule = status.get("checkpoints") or {}
    if not schedule:
        return "-"
    last = history.parse_time(schedule.get("lastCheckpointTime"))
    nxt = history.parse_time(schedule.get("nextCheckpointTime"))
    parts = [f"last {human_age(last, now)} ago" if last else "last -"]
    if nxt is not None:
        parts.append(f"next in {human_age(now, nxt)}" if nxt > now else "next due")
    return ", ".join(parts)


def hibernation_cell(status: dict[str, Any], now: datetime) -> str:
    """`status.hibernation` at a glance: `3h, saves 4.27 EUR/mo`, `hibernating`, `waking`."""
    hib = status.get("hibernation") or {}
    state = hib.get("state")
    if not state:
        return "-"
    if state != "Hibernated":
        return str(state).lower()
    since = human_age(history.parse_time(hib.get("since")), now)
    saving = hib.get("monthlySaving")
    if not isinstance(saving, (int, float)):
        return since
    return f"{since}, saves {saving:.2f} {hib.get('currency') or ''}/mo".replace(" /mo", "/mo")


def hibernation_total(agents: Iterable[dict[str, Any]]) -> str | None:
    """`HIBERNATED: n Agents, saving x EUR/month` over the listed Agents, or None."""
    count, saving, currencies = 0, 0.0, set()
    for agent in agents:
        hib = (agent.get("status") or {}).get("hibernation") or {}
        if hib.get("state") != "Hibernated":
            continue
        count += 1
        saving += hib.get("monthlySaving") or 0.0
        currencies.add(hib.get("currency") or "")
    if not count:
        return None
    unit = "/".join(sorted(c for c in currencies if c)) or "?"
    return f"HIBERNATED: {count} Agent(s), saving {saving:.2f} {unit}/month (net)"


def event_rows(events: Iterable[dict[str, Any]], now: datetime) -> list[list[str]]:
    """An Agent's Events in the order they happened (`history.ordered`): age, type, reason,
    reporter, message."""
    return [
        [human_age(e.time, now), e.type, e.reason, e.reporter or "-", e.message]
        for e in history.ordered(events)
    ]


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by three spaces, like `kubectl get`."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    lines = [
        "   ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


async def _fetch(
    namespace: str | None, name: str | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    await config.load_kube_config()
    async with client.ApiClient() as api:
        custom = client.CustomObjectsApi(api)
        if name:
            agents = [
                await custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace or "default", PLURAL, name
                )
            ]
        elif namespace:
            listed = await custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
            agents = listed["items"]
        else:
            agents = (await custom.list_cluster_custom_object(GROUP, VERSION, PLURAL))["items"]
        events = await history.read_events(
            api, (namespace or "default") if name else namespace, name
        )
    return agents, events


@click.command("status")
@click.argument("name", required=False)
@click.option("-n", "--namespace", help="Namespace (default: all, or 'default' with NAME).")
@click.option("--events", "show_events", is_flag=True, help="Print NAME's event history.")
def command(name: str | None, namespace: str | None, show_events: bool) -> None:
    """Show Agents: phase, time in phase, addresses and the last event."""
    if show_events and not name:
        raise click.UsageError("--events needs an Agent NAME")
    try:
        agents, events = asyncio.run(_fetch(namespace, name))
    except client.ApiException as exc:
        if exc.status == 404:
            raise click.ClickException(
                f"agent {name!r} not found in namespace {namespace or 'default'!r}"
            ) from None
        raise click.ClickException(f"Kubernetes API error {exc.status}: {exc.reason}") from None
    now = datetime.now(UTC)
    if show_events:
        header = ["AGE", "TYPE", "REASON", "FROM", "MESSAGE"]
        click.echo(render_table(header, event_rows(events, now)))
        return
    header = ["NAMESPACE", "NAME", "PHASE", "IN PHASE", "DESIRED", "PUBLIC IP", "TAILNET IP",
              "COST MTD", "PROJECTED", "MARGIN", "CHECKPOINTS", "HIBERNATED",
              "LAST EVENT"]  # fmt: skip
    click.echo(render_table(header, agent_rows(agents, events, now)))
    for total in (fleet_total(agents), hibernation_total(agents)):
        if total is not None:
            click.echo(total)
