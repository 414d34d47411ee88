"""Pure functions: conditions, phase derivation, names, cloud-init, status merge patches."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from aura.controller import conditions as c
from aura.controller.clients.kube import AgentRef
from aura.controller.driver import merge_patch
from aura.controller.naming import server_labels, server_name
from aura.controller.reconcile.cloudinit import CloudInit, render
from aura.models import Condition, DesiredState, Phase
from aura_sandbox.tailnet_cloudinit import find_tailscale_up

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_set_condition_changes_transition_time_only_on_flips() -> None:
    conds: list[Condition] = []
    assert c.set_condition(conds, c.HEALTHY, c.FALSE, "A", "a", generation=1, at=T0)
    later = T0 + timedelta(seconds=5)
    assert not c.set_condition(conds, c.HEALTHY, c.FALSE, "B", "b", generation=2, at=later)
    assert conds[0].last_transition_time == T0
    assert (conds[0].reason, conds[0].message, conds[0].observed_generation) == ("B", "b", 2)
    assert c.set_condition(conds, c.HEALTHY, c.TRUE, "C", "c", generation=2, at=later)
    assert conds[0].last_transition_time == later


def test_conditions_stay_sorted_by_type() -> None:
    conds: list[Condition] = []
    for type_ in reversed(c.TYPES):
        c.set_condition(conds, type_, c.UNKNOWN, "Pending", "", generation=1)
    assert [x.type for x in conds] == list(c.TYPES)


def _conds(**statuses: tuple[str, str]) -> list[Condition]:
    conds: list[Condition] = []
    c.initialize_conditions(conds, 1)
    for type_, (status, reason) in statuses.items():
        c.set_condition(conds, type_, c.ConditionStatus(status), reason, "", generation=1)
    return conds


R = DesiredState.RUNNING


@pytest.mark.parametrize(
    ("statuses", "desired", "phase"),
    [
        ({}, R, Phase.QUEUED),
        ({"ServerReady": ("Unknown", "Queued")}, R, Phase.QUEUED),
        ({"ServerReady": ("False", "Creating")}, R, Phase.PROVISIONING),
        ({"ServerReady": ("False", "Starting"), "Configured": ("True", "C")}, R, Phase.STARTING),
        ({"ServerReady": ("True", "Running")}, R, Phase.CONFIGURING),
        ({"ServerReady": ("True", "R"), "Configured": ("True", "C")}, R, Phase.NETWORKING),
        (
            {
                "ServerReady": ("True", "R"),
                "Configured": ("True", "C"),
                "TailnetJoined": ("True", "J"),
                "Healthy": ("True", "G"),
            },
            R,
            Phase.RUNNING,
        ),
        (
            {
                "ServerReady": ("True", "R"),
                "Configured": ("True", "C"),
                "TailnetJoined": ("True", "J"),
                "Healthy": ("False", "GatewayUnhealthy"),
            },
            R,
            Phase.DEGRADED,
        ),
        ({"Ready": ("False", "ProvisioningFailed")}, R, Phase.FAILED),
        ({"ServerReady": ("False", "ShuttingDown")}, DesiredState.STOPPED, Phase.STOPPING),
        ({"ServerReady": ("False", "PoweredOff")}, DesiredState.STOPPED, Phase.STOPPED),
        ({"ServerReady": ("False", "PoweredOff")}, DesiredState.SUSPENDED, Phase.SUSPENDED),
        ({"Ready": ("False", "Deleting")}, DesiredState.DELETED, Phase.DELETING),
        ({"Ready": ("False", "Deleted")}, DesiredState.DELETED, Phase.DELETED),
        # Hibernation: its Ready reasons win whatever desiredState (automatic hibernation
        # leaves stopped/suspended); Waking lasts until the new server runs.
        ({}, DesiredState.HIBERNATED, Phase.HIBERNATING),
        ({"ServerReady": ("True", "Running")}, DesiredState.HIBERNATED, Phase.HIBERNATING),
        ({"Ready": ("False", "Hibernating")}, DesiredState.STOPPED, Phase.HIBERNATING),
        ({"Ready": ("False", "Hibernated")}, DesiredState.HIBERNATED, Phase.HIBERNATED),
        ({"Ready": ("False", "Hibernated")}, DesiredState.SUSPENDED, Phase.HIBERNATED),
        ({"Ready": ("False", "HibernationFailed")}, DesiredState.HIBERNATED, Phase.FAILED),
        ({"ServerReady": ("False", "Waking"), "Ready": ("False", "Waking")}, R, Phase.WAKING),
        ({"ServerReady": ("False", "Waking")}, R, Phase.WAKING),
        ({"Ready": ("False", "Hibernated")}, DesiredState.DELETED, Phase.DELETING),
    ],
)
def test_derive_phase(
    statuses: dict[str, tuple[str, str]], desired: DesiredState, phase: Phase
) -> None:
    assert c.derive_phase(_conds(**statuses), desired) == phase


def test_server_name_is_deterministic_rfc1123_and_unique_per_uid() -> None:
    a = AgentRef("customer-namespace-" * 5, "My_Agent.Name" * 4, "uid-1")
    name = server_name(a)
    assert name == server_name(a)
    assert len(name) <= 63
    assert name.replace("-", "").isalnum() and name == name.lower()
    assert not name.startswith("-") and not name.endswith("-")
    assert server_name(AgentRef(a.namespace, a.name, "uid-2")) != name
    labels = server_labels(a)
    assert labels["aura.dev/agent-uid"] == "uid-1"
    assert all(len(v) <= 63 for v in labels.values())


def test_cloud_init_of_an_image_with_an_identity_forgets_it_early_and_once() -> None:
    import yaml

    ci = CloudInit(
        hostname="aura-ns-a-123456",
        auth_key="tskey-auth-" + "kABC-secretsecret",
        ssh_user="root",
        authorized_key="ssh-ed25519 AAAAclient aura",
        host_private_key="-----BEGIN OPENSSH " + "PRIVATE KEY-----\nx\n",
        fresh_identity=True,
    )
    doc = yaml.safe_load(render(ci))
    forget = doc["bootcmd"][1]
    # In bootcmd (early boot, not after the packages), once per instance, not at every reboot.
    assert forget.startswith("cloud-init-per instance ")
    assert "rm -f /var/lib/tailscale/tailscaled.state" in forget
    assert "systemctl stop tailscaled" in forget
    assert doc["runcmd"][0] == "systemctl start tailscaled || true"
    assert "tailscale up" in doc["runcmd"][3]
    plain = yaml.safe_load(render(replace(ci, fresh_identity=False)))
    assert len(plain["bootcmd"]) == 1 and "tailscaled" not in plain["runcmd"][0]


def test_cloud_init_syncs_time_first_and_joins_with_the_key_from_a_file() -> None:
    ci = CloudInit(
        hostname="aura-ns-a-123456",
        auth_key="tskey-auth-" + "kABC-secretsecret",
        ssh_user="root",
        authorized_key="ssh-ed25519 AAAAclient aura",
        host_private_key="-----BEGIN OPENSSH " + "PRIVATE KEY-----\nx\n"
        "-----END OPENSSH PRIVATE KEY-----\n",
        host_public_key="ssh-ed25519 AAAAhost root@x",
    )
    text = render(ci)
    assert text.startswith("#cloud-config\n")
    import yaml

    doc = yaml.safe_load(text)
    assert doc["ntp"] == {"enabled": True}
    assert "set-ntp" in doc["runcmd"][0] and "NTPSynchronized" in doc["runcmd"][0]
    assert "install.sh" in doc["runcmd"][1]
    assert "tailscale up" in doc["runcmd"][2] and "--ssh=false" in doc["runcmd"][2]
    assert "tskey-auth" not in doc["runcmd"][2]  # read from a root-only file, not argv
    assert doc["ssh_keys"]["ed25519_public"] == ci.host_public_key
    assert doc["ssh_authorized_keys"] == [ci.authorized_key]
    # What the sandbox's simulated VM (and so a real one) would run.
    up = find_tailscale_up(text)
    assert up is not None
    assert (up.auth_key, up.hostname) == (ci.auth_key, ci.hostname)
    assert ci.auth_key not in repr(ci)


def test_merge_patch_nulls_removed_keys_also_in_nested_objects() -> None:
    old = {"phase": "Failed", "provisioning": {"attempt": 1, "failedGeneration": 1}, "x": 1}
    new = {"phase": "Queued", "provisioning": {"attempt": 2}}
    assert merge_patch(old, new) == {
        "phase": "Queued",
        "provisioning": {"attempt": 2, "failedGeneration": None},
        "x": None,
    }
    assert merge_patch(new, new) == {}
