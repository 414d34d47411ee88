"""Shards: two real `aura operator` processes, one per shard, against one apiserver, one
namespace and one sandbox (controller/shards.py).

`--shard a` serves the Agents labelled `aura.dev/shard=a`; the other operator, without
`--shard`, serves the default shard (Agents without the label) and the fleet-wide orphan
sweep. Each shard has its own peering name (a namespaced KopfPeering each), so both are active
at once. Every Agent is reconciled by exactly one of them: each operator's per-Agent metric
series and log name only its own Agents, each Agent gets exactly one server, and an Agent
labelled for a shard that has no operator is touched by neither.
"""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Callable

import pytest
from click.testing import CliRunner

from aura.controller.cli import command
from aura.controller.shards import SHARD_LABEL
from aura_sandbox.harness import Sandbox
from tests.kube import Cluster
from tests.operator.harness import (
    OperatorProcess,
    agent_manifest,
    apply,
    get_agent,
    servers_of,
    wait_for,
    wait_phase,
)

pytestmark = pytest.mark.integration

SERIES = "aura_agent_phase_since_timestamp_seconds{"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _agents_in_metrics(port: int, namespace: str) -> set[str]:
    """The Agents this operator has reconciled: its per-Agent phase series."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    names = set()
    for line in text.splitlines():
        if line.startswith(SERIES) and f'namespace="{namespace}"' in line:
            names.add(line.split('agent="', 1)[1].split('"', 1)[0])
    return names


def _peering(cluster: Cluster, namespace: str, name: str) -> None:
    body = {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": name}}
    custom = cluster.custom
    custom.create_namespaced_custom_object("kopf.dev", "v1", namespace, "kopfpeerings", body)


def test_each_agent_is_reconciled_by_exactly_one_shard(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    for name in ("aura", "aura-a"):
        _peering(cluster, namespace, name)
    ports = {"a": _free_port(), "default": _free_port()}
    shard_a = start_operator(
        env={"POD_ID": "shard-a-0"}, shard="a", peering="aura-a", metrics_port=str(ports["a"])
    )
    default = start_operator(
        env={"POD_ID": "default-0"}, peering="aura", metrics_port=str(ports["default"])
    )
    for proc in (shard_a, default):  # kopf's word that this replica acts in its peering
        wait_for(lambda p=proc: "Resuming operations" in p.log(), 30, what="peering resumed")

    owners = {"sa-1": "a", "sa-2": "a", "plain-1": "default", "plain-2": "default"}
    for name, shard in owners.items():
        manifest = agent_manifest(name, namespace)
        if shard != "default":
            manifest["metadata"]["labels"] = {SHARD_LABEL: shard}
        apply(cluster, manifest)
    orphaned = agent_manifest("sb-1", namespace)  # shard b has no operator
    orphaned["metadata"]["labels"] = {SHARD_LABEL: "b"}
    apply(cluster, orphaned)

    uids = [wait_phase(cluster, namespace, n, "Running")["metadata"]["uid"] for n in owners]
    for shard, port in ports.items():
        mine = {n for n, s in owners.items() if s == shard}
        assert _agents_in_metrics(port, namespace) == mine, shard
    for proc, theirs in ((shard_a, ("plain-1", "plain-2")), (default, ("sa-1", "sa-2"))):
        log = proc.log()
        assert not [n for n in theirs if f"-{n}-" in log], f"{proc.log_path} names {theirs}"
    # Exactly one server per Agent: no two operators ever both created one.
    for uid in uids:
        assert len(servers_of(sandbox, uid)) == 1, servers_of(sandbox)
    assert len(servers_of(sandbox)) == len(owners)
    # The Agent of a shard nobody serves is left alone entirely (no status, no finalizer).
    untouched = get_agent(cluster, namespace, "sb-1") or {}
    assert "status" not in untouched and not untouched["metadata"].get("finalizers")
    assert "sb-1" not in shard_a.log() + default.log()


def test_a_bad_shard_name_is_refused_naming_the_flag() -> None:
    result = CliRunner().invoke(command, ["--shard", "not a label!"], env={"HCLOUD_TOKEN": "x"})
    assert result.exit_code == 2
    assert "--shard" in result.output and "not a valid label value" in result.output
