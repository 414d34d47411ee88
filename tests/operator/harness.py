"""Running the real `aura operator` against the real apiserver and an in-process sandbox.

`OperatorProcess` starts `python -m aura operator --namespace NS` as a subprocess with the
sandbox's credentials in the ecosystem's environment variables and fast timings, captures
its log to a file (so tests can grep it for secrets), and can be stopped or SIGKILLed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes.client.exceptions import ApiException

from aura import history
from aura.models import GROUP, PLURAL, VERSION
from aura_sandbox.harness import Sandbox
from tests.kube import Cluster
from tests.polling import wait_for

__all__ = ["wait_for"]  # re-exported: the operator tests import it from here

T = TypeVar("T")

# Fast timings for a sandbox at time_scale 0.02 (a 25 s boot takes 0.5 s).
FAST_FLAGS = {
    "poll-interval": "0.3",
    "health-interval": "1",
    "server-list-max-age": "0.2",
    "retry-backoff": "0.2",
    "shutdown-timeout": "3",
    "boot-timeout": "20",
    "cloud-init-timeout": "20",
    "tailnet-join-timeout": "8",
    "provision-deadline": "60",
    "credentials-retry-delay": "2",
    "sweep-interval": "1",
    "orphan-grace": "2",
    "rate-limit-max-backoff": "1",
    "drift-interval-min": "1",
    "drift-interval-max": "2",
}


class OperatorProcess:
    """One `aura operator` child process; see the module docstring."""

    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        sandbox: Sandbox,
        log_path: Path,
        env: dict[str, str] | None = None,
        **flags: str,
    ) -> None:
        self.cluster, self.namespace, self.sandbox = cluster, namespace, sandbox
        self.log_path = log_path
        self.env = env or {}
        self.flags = {**FAST_FLAGS, **{k.replace("_", "-"): v for k, v in flags.items()}}
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def start(self) -> OperatorProcess:
        env = {
            **os.environ,
            "KUBECONFIG": self.cluster.kubeconfig,
            "HCLOUD_TOKEN": self.sandbox.ready.hetzner_token,
            "HCLOUD_ENDPOINT": self.sandbox.ready.hetzner_url,
            "TAILSCALE_OAUTH_CLIENT_ID": self.sandbox.ready.tailscale_client_id,
            "TAILSCALE_OAUTH_CLIENT_SECRET": self.sandbox.ready.tailscale_client_secret,
            "TAILSCALE_TAILNET": self.sandbox.ready.tailscale_tailnet,
            "TAILSCALE_BASE_URL": self.sandbox.ready.tailscale_url,
            "AURA_SANDBOX_URL": self.sandbox.ready.admin_url,
            **self.env,
        }
        args = [f"--{k}={v}" for k, v in self.flags.items()]
        cmd = [sys.executable, "-m", "aura", "operator", "--namespace", self.namespace]
        cmd += ["--log-format", "text", *args]
        log = self.log_path.open("ab")
        log.write(f"=== start #{self.restarts}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.restarts += 1
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, no flush; the next start must converge anyway."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def agent_manifest(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Agent",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"desiredState": "running", **spec},
    }


def apply(cluster: Cluster, manifest: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))


def get_agent(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        obj: dict[str, Any] = cluster.custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return obj


def patch_spec(cluster: Cluster, namespace: str, name: str, spec: dict[str, Any]) -> None:
    cluster.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name, {"spec": spec}
    )


def annotate(cluster: Cluster, namespace: str, name: str, key: str, value: str) -> None:
    cluster.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name, {"metadata": {"annotations": {key: value}}}
    )


def phase(cluster: Cluster, namespace: str, name: str) -> str | None:
    agent = get_agent(cluster, namespace, name)
    return (agent or {}).get("status", {}).get("phase")


def wait_phase(
    cluster: Cluster, namespace: str, name: str, want: str, timeout: float = 60
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        agent = get_agent(cluster, namespace, name)
        if agent and agent.get("status", {}).get("phase") == want:
            return agent
        return None

    try:
        return wait_for(check, timeout, what=f"{name} phase {want}")
    except AssertionError:
        agent = get_agent(cluster, namespace, name) or {}
        raise AssertionError(
            f"{name} never reached {want}; status: {agent.get('status')}"
        ) from None


def agent_uid(cluster: Cluster, namespace: str, name: str) -> str:
    """Wait (10 s at most) for the Agent to exist; its UID."""
    agent = wait_for(lambda: get_agent(cluster, namespace, name), 10, what=f"agent {name}")
    return str(agent["metadata"]["uid"])


def apply_running(
    cluster: Cluster, namespace: str, name: str, timeout: float = 60
) -> dict[str, Any]:
    """Create an Agent with the default spec and wait until it is Running."""
    apply(cluster, agent_manifest(name, namespace))
    return wait_phase(cluster, namespace, name, "Running", timeout=timeout)


def condition(agent: dict[str, Any], type_: str) -> dict[str, Any]:
    for c in agent.get("status", {}).get("conditions", []):
        if c["type"] == type_:
            return dict(c)
    raise AssertionError(f"no condition {type_} in {agent.get('status')}")


def events(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    """The Agent's Events, oldest first, in the order `aura status --events` shows them."""
    items = cluster.core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name}"
    ).items
    return [
        {"reason": e.reason, "message": e.message, "type": e.type, "time": e.time}
        for e in history.ordered(cluster.api.sanitize_for_serialization(i) for i in items)
    ]


def servers_of(sandbox: Sandbox, label_value: str | None = None) -> list[dict[str, Any]]:
    """Admin views of every live sandbox server (optionally one Agent's, by UID label)."""

    def collect(world: Any) -> list[dict[str, Any]]:
        from aura_sandbox.admin import server_view

        out = []
        for server in world.servers.values():
            if getattr(server, "deleted", False):
                continue
            view = server_view(world, server)
            if label_value is None or server.labels.get("aura.dev/agent-uid") == label_value:
                out.append(view)
        return out

    return sandbox.call(collect)


def devices(sandbox: Sandbox) -> list[dict[str, Any]]:
    def collect(world: Any) -> list[dict[str, Any]]:
        return [dict(vars(d)) for d in world._parts["tailnet"].devices.values()]

    return sandbox.call(collect)
