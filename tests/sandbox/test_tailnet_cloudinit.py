"""Finding `tailscale up` in a server's user_data, the way the VM's shell would run it."""

from __future__ import annotations

import pytest

from aura.controller.reconcile import cloudinit
from aura_sandbox.tailnet_cloudinit import TailscaleUp, find_tailscale_up, forgets_node_state

KEY = "tskey-auth-" + "kAbc123CNTRL-s3cr3t"


@pytest.mark.parametrize(
    "user_data",
    [
        f"#cloud-config\nruncmd:\n  - tailscale up --auth-key={KEY} --hostname=agent-1\n",
        f"#cloud-config\nruncmd:\n  - tailscale up --authkey={KEY} --hostname agent-1\n",
        f"#cloud-config\nruncmd:\n  - [tailscale, up, --auth-key, {KEY}, --hostname=agent-1]\n",
        f"#cloud-config\nruncmd:\n"
        f"  - ['sh', '-c', 'tailscale up -authkey={KEY} --hostname=agent-1']\n",
        f"#!/bin/bash\nset -eu\ncurl -fsSL https://tailscale.com/install.sh | sh\n"
        f"sudo tailscale up \\\n  --auth-key='{KEY}' \\\n  --hostname=agent-1 --ssh\n",
        f"#!/bin/sh\napt-get install -y tailscale && tailscale up --auth-key {KEY} "
        f"--hostname=agent-1 && tailscale set --ssh\n",
        f"#cloud-config\nwrite_files:\n  - path: /opt/join.sh\n    content: |\n"
        f"      #!/bin/sh\n      /usr/bin/tailscale up --auth-key={KEY} --hostname=agent-1\n"
        f"runcmd:\n  - bash /opt/join.sh\n",
        f"#cloud-config\nwrite_files:\n  - path: /run/ts.key\n    content: {KEY}\n"
        f"runcmd:\n  - tailscale up --auth-key=file:/run/ts.key --hostname=agent-1\n",
    ],
    ids=[
        "runcmd-eq",
        "authkey-space",
        "runcmd-list",
        "sh-c",
        "script-continuations",
        "script-and-chain",
        "write-files-script",
        "file-key",
    ],
)
def test_finds_key_and_hostname(user_data: str) -> None:
    assert find_tailscale_up(user_data) == TailscaleUp(auth_key=KEY, hostname="agent-1")


def test_advertise_tags_get_the_tag_prefix() -> None:
    up = find_tailscale_up(f"tailscale up --auth-key={KEY} --advertise-tags=tag:a,b\n")
    assert up == TailscaleUp(auth_key=KEY, hostname=None, advertise_tags=("tag:a", "tag:b"))


def test_flags_of_the_next_command_are_not_taken() -> None:
    up = find_tailscale_up(f"tailscale up --auth-key={KEY}; hostnamectl --hostname=nope\n")
    assert up == TailscaleUp(auth_key=KEY)


def test_first_line_is_used_when_two_run() -> None:
    user_data = f"tailscale up --auth-key={KEY}\ntailscale up --auth-key=tskey-auth-other\n"
    assert find_tailscale_up(user_data) == TailscaleUp(auth_key=KEY)


@pytest.mark.parametrize(
    "user_data",
    [
        None,
        "",
        "#cloud-config\nruncmd:\n  - echo hello\n",
        "#cloud-config\nruncmd: [\n",  # not YAML: cloud-init would give up
        "#cloud-config\npackages: [tailscale]\n",
        f"# tailscale up --auth-key={KEY}\n",  # a comment
        "tailscale up --hostname=agent-1\n",  # no key: it would print a login URL
        f"#cloud-config\nwrite_files:\n  - path: /opt/join.sh\n    content: |\n"
        f"      tailscale up --auth-key={KEY}\n",  # written but never run
        "tailscale status\n",
        f"tailscale up --auth-key='{KEY}\n",  # unbalanced quote
    ],
)
def test_nothing_to_join_with(user_data: str | None) -> None:
    assert find_tailscale_up(user_data) is None


def test_shell_variables_are_not_expanded() -> None:
    up = find_tailscale_up(f"TS_KEY={KEY}\ntailscale up --auth-key=$TS_KEY\n")
    assert up == TailscaleUp(auth_key="$TS_KEY")


STATE = "/var/lib/tailscale/tailscaled.state"


@pytest.mark.parametrize(
    ("user_data", "forgets"),
    [
        (f"#cloud-config\nruncmd:\n  - rm -f {STATE}\n  - tailscale up --auth-key={KEY}\n", True),
        (f"#cloud-config\nbootcmd:\n  - [rm, -f, {STATE}]\n", True),
        (f"#cloud-config\nruncmd:\n  - [sh, -c, 'systemctl stop tailscaled; rm {STATE}']\n", True),
        ("#!/bin/sh\nsudo rm -rf /var/lib/tailscale/\n", True),
        ("#!/bin/sh\nrm --recursive --force /var/lib/tailscale\n", True),
        ("#!/bin/sh\nrm -f /var/lib/tailscale/*\n", True),
        (f"#!/bin/sh\nshred -u {STATE}\n", True),
        (f"#cloud-config\nwrite_files:\n  - path: /opt/forget.sh\n    content: |\n"
         f"      rm -f {STATE}\nruncmd:\n  - sh /opt/forget.sh\n", True),
        (None, False),
        (f"#cloud-config\nruncmd:\n  - tailscale up --auth-key={KEY}\n", False),
        (f"#!/bin/sh\nshred {STATE}\n", False),  # overwritten, still there
        ("#!/bin/sh\nrm -f /var/lib/tailscale\n", False),  # a directory needs -r
        ("#!/bin/sh\nrm -f /var/lib/tailscale/derpmap.cached.json\n", False),
        (f"#!/bin/sh\n# rm -f {STATE}\n", False),  # a comment
        (f"#cloud-config\nwrite_files:\n  - path: /opt/forget.sh\n    content: |\n"
         f"      rm -f {STATE}\n", False),  # written but never run
    ],
)  # fmt: skip
def test_finds_the_removal_of_the_node_state(user_data: str | None, forgets: bool) -> None:
    assert forgets_node_state(user_data) is forgets


@pytest.mark.parametrize("fresh", [True, False])
def test_the_operators_cloud_init_forgets_the_node_only_for_a_fresh_identity(fresh: bool) -> None:
    """Aura's own document (`FORGET_IDENTITY`) is what the sandbox acts on."""
    ci = cloudinit.CloudInit(
        hostname="agent-1",
        auth_key=KEY,
        ssh_user="aura",
        authorized_key="ssh-ed25519 AAAA",
        host_private_key="placeholder host key (the sandbox never reads it)",
        fresh_identity=fresh,
    )
    user_data = cloudinit.render(ci)
    assert forgets_node_state(user_data) is fresh
    assert find_tailscale_up(user_data) == TailscaleUp(auth_key=KEY, hostname="agent-1")
