"""The production AnsibleConfigurator inside the full reconcile loop, against a real sshd.

The sandbox provides the server and the tailnet; the Configuring step runs ansible-runner
over SSH to a throwaway sshd on loopback (`--ssh-target-override`), with the per-agent key
pair and the pinned host key taken from the Agent's SSH Secret (pre-seeded here with the
sshd's keys, exactly where the operator would have generated them). The sandbox only learns
that the server is configured when the test marks it, once the playbook's marker exists:
that is the part of a real host the sandbox cannot simulate.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from kubernetes import client

from aura_sandbox.harness import Sandbox
from tests.kube import Cluster
from tests.operator.harness import (
    OperatorProcess,
    agent_manifest,
    agent_uid,
    apply,
    condition,
    get_agent,
    wait_phase,
)
from tests.sshd import Sshd

pytestmark = pytest.mark.integration

PLAYBOOKS = Path(__file__).parent / "playbooks"


def test_ansible_configurator_runs_inside_the_reconcile_loop(
    cluster: Cluster,
    namespace: str,
    sandbox: Sandbox,
    sshd: Sshd,
    tmp_path: Path,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    apply(cluster, agent_manifest("ans", namespace))
    uid = agent_uid(cluster, namespace, "ans")
    cluster.core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="ans-ssh"),
            string_data={
                "ssh-privatekey": sshd.client_private_key,
                "ssh-publickey": "ssh-ed25519 unused-by-this-test",
                "host-privatekey": "unused: the loopback sshd has its own host key",
                "host-publickey": sshd.host_public_key,
            },
        ),
    )
    markers = tmp_path / "markers"
    markers.mkdir()

    # Stand-in for the host itself: once Ansible has configured it, the gateway would answer.
    stop = threading.Event()

    def mark_configured_when_ansible_ran() -> None:
        while not stop.wait(0.1):
            if list(markers.glob("*.configured")):
                server_id = (
                    (get_agent(cluster, namespace, "ans") or {})
                    .get("status", {})
                    .get("server", {})
                    .get("id")
                )
                if server_id:
                    sandbox.configure(server_id, "2026.3.1")
                    return

    watcher = threading.Thread(target=mark_configured_when_ansible_ran, daemon=True)
    watcher.start()
    try:
        start_operator(
            env={"AURA_ANSIBLE_DIR": str(PLAYBOOKS)},
            configurator="ansible",
            ansible_playbook="configure.yml",
            ansible_extra_vars=json.dumps(
                {"marker_dir": str(markers), "ansible_python_interpreter": sshd.python}
            ),
            ssh_target_override=f"{sshd.host}:{sshd.port}",
            ssh_user=sshd.user,
            configure_timeout="120",
            provision_deadline="180",
        )
        agent = wait_phase(cluster, namespace, "ans", "Running", timeout=150)
    finally:
        stop.set()
        watcher.join(5)
    [marker] = list(markers.glob("*.configured"))
    assert marker.read_text() == "version=2026.3.1 port=18789\n"
    configured = condition(agent, "Configured")
    assert configured["status"] == "True" and "changed" in configured["message"]
    assert agent["metadata"]["uid"] == uid
