"""Generated names: deterministic, RFC 1123, at most 63 characters, no word said twice."""

from __future__ import annotations

import re

import pytest

from aura.controller import naming
from aura.controller.clients.kube import AgentRef
from aura.controller.reconcile.sweeper import Sweeper
from aura.controller.settings import OperatorConfig
from tests.fakes.hetzner import FakeHetzner
from tests.fakes.operator import fake_operator
from tests.fakes.tailnet import FakeTailnet

LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@pytest.mark.parametrize(
    ("namespace", "name", "stem"),
    [
        ("aura-demo", "acme-4e6f", "aura-demo-acme-4e6f"),
        ("aura", "acme", "aura-acme"),
        ("default", "acme", "aura-default-acme"),
        ("team-a", "team-a-bot", "aura-team-a-bot"),  # the name repeats the namespace
        ("aura-demo", "demo-bot", "aura-demo-bot"),
        ("aurora", "x", "aura-aurora-x"),  # whole words only
        ("demo-aura", "aura-x", "aura-demo-aura-x"),
        ("a-b", "b-a", "aura-a-b-a"),
    ],
)
def test_no_word_repeats_where_parts_meet(namespace: str, name: str, stem: str) -> None:
    ref = AgentRef(namespace, name, "uid-1")
    assert naming.server_name(ref) == f"{stem}-{naming.short_hash('uid-1')}"


def test_the_demo_namespace_no_longer_doubles_the_prefix() -> None:
    ref = AgentRef("aura-demo", "acme-4e6f", "0f1e2d3c")
    assert naming.server_name(ref).startswith("aura-demo-acme-4e6f-")
    assert naming.legacy_server_name(ref).startswith("aura-aura-demo-acme-4e6f-")
    assert naming.server_names(ref) == {naming.server_name(ref), naming.legacy_server_name(ref)}


@pytest.mark.parametrize(
    ("namespace", "name"),
    [
        ("aura-" + "long-namespace-" * 4, "agent-" * 30),
        ("aura", "aura-" * 20),
        ("x" * 63, "y" * 200),
        ("aura-demo", "A_Mixed.Case_Name"),
    ],
)
def test_names_are_deterministic_labels_within_63_characters(namespace: str, name: str) -> None:
    namespace = namespace.strip("-")[:63]
    ref = AgentRef(namespace, name, "uid-1")
    generated = naming.server_name(ref)
    assert generated == naming.server_name(AgentRef(namespace, name, "uid-1"))
    assert len(generated) <= 63 and LABEL.match(generated), generated
    assert "--" not in generated
    assert naming.server_name(AgentRef(namespace, name, "uid-2")) != generated


def test_an_unchanged_name_has_no_legacy_twin() -> None:
    ref = AgentRef("default", "acme", "u")
    assert naming.server_names(ref) == {naming.server_name(ref)}


def test_prefixes_cover_current_and_legacy_names() -> None:
    ref = AgentRef("aura-demo", "acme", "u")
    prefixes = naming.name_prefixes("aura-demo")
    assert prefixes == ("aura-aura-demo-", "aura-demo-")
    assert all(n.startswith(prefixes) for n in naming.server_names(ref))
    assert naming.name_prefixes(None) == ("aura-",)
    assert naming.name_prefixes("default") == ("aura-default-",)


async def test_sweeper_keeps_a_live_agents_legacy_named_device_and_sweeps_a_new_orphan() -> None:
    h, ts = FakeHetzner(), FakeTailnet()
    now = [0.0]
    op = fake_operator(OperatorConfig(namespace="aura-demo", orphan_grace=10), h, ts)
    live, gone = AgentRef("aura-demo", "old", "u1"), AgentRef("aura-demo", "gone", "u2")
    for hostname in (naming.legacy_server_name(live), naming.server_name(gone)):
        key = await ts.create_auth_key(tags=["tag:aura-agent"], description="", expiry_seconds=1)
        ts.join(key.key, hostname)
    agents = [{"metadata": {"namespace": "aura-demo", "name": "old", "uid": "u1"}, "spec": {}}]
    sweeper = Sweeper(op, clock=lambda: now[0])
    await sweeper.sweep(agents)
    now[0] = 11
    assert await sweeper.sweep(agents) == 1
    assert {d.hostname for d in ts.devices.values()} == {naming.legacy_server_name(live)}
    await op.http.aclose()
