"""The demo's components: a control plane, the CRDs and namespace, and three `aura` processes.

Everything runs for real on this machine: a kube-apiserver (or the cluster in `KUBECONFIG`),
`aura sandbox` (Hetzner, Tailscale and Stripe simulators), `aura bridge` and `aura operator`,
each a child process with its log in `log_dir` (see `processes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import click
from kubernetes_asyncio import client, config

from aura import crd
from aura.models import GROUP, PLURAL, VERSION
from aura_demo.processes import ChildProcess, free_port
from aura_demo.story import Story

REPO = Path(__file__).resolve().parents[2]
ENVTEST = REPO / "hack" / "envtest.sh"


class Components:
    """Starts the components (`bring_up`) and stops them again (`stop`)."""

    def __init__(self, namespace: str, time_scale: float, story: Story) -> None:
        self.namespace, self.time_scale, self.story = namespace, time_scale, story
        self.children: list[ChildProcess] = []
        self.started_cluster = False
        self.log_dir = Path(tempfile.mkdtemp(prefix="aura-demo-"))
        self.info: dict[str, Any] = {}
        self.api_token = secrets.token_urlsafe(24)
        self.bridge_url = ""

    def bring_up(self) -> None:
        """Cluster, CRD, sandbox, bridge and operator; raises with a reason if one fails."""
        self.story.say("starting the control plane")
        self._ensure_cluster()
        asyncio.run(self._install_crd_and_namespace())
        bridge_port = free_port()
        self.bridge_url = f"http://127.0.0.1:{bridge_port}"
        webhook_secret = "whsec_" + secrets.token_urlsafe(24)
        self.story.say(f"starting aura sandbox (time scale {self.time_scale})")
        sandbox = self._start(
            "sandbox",
            [
                "sandbox",
                "--port",
                "0",
                "--time-scale",
                str(self.time_scale),
                "--stripe-webhook-url",
                f"{self.bridge_url}/v1/stripe/webhook",
                "--stripe-webhook-secret",
                webhook_secret,
            ],
            {},
        )
        self.info = sandbox.read_json_line(timeout=60)
        self.story.say("starting aura bridge")
        bridge = self._start(
            "bridge",
            ["bridge", "--host", "127.0.0.1", "--port", str(bridge_port), "--log-format", "text"],
            {
                "STRIPE_WEBHOOK_SECRET": webhook_secret,
                "STRIPE_API_KEY": self.info["stripe_api_key"],
                "STRIPE_API_BASE": self.info["stripe_url"],
                "AURA_API_TOKENS": self.api_token,
                "AURA_BRIDGE_NAMESPACE": self.namespace,
                "AURA_BRIDGE_SWEEP_INTERVAL": "2",  # the dunning step's deadlines, promptly
            },
        )
        bridge.wait_http(f"{self.bridge_url}/readyz", timeout=60)
        self.story.say("starting aura operator")
        self._start(
            "operator",
            # The sandbox runs at --time-scale, so the operator may poll as often as it likes.
            [
                "operator",
                "--namespace",
                self.namespace,
                "--poll-interval",
                "1",
                "--health-interval",
                "5",
            ],
            {
                "HCLOUD_TOKEN": self.info["hetzner_token"],
                "HCLOUD_ENDPOINT": self.info["hetzner_url"],
                "TAILSCALE_OAUTH_CLIENT_ID": self.info["tailscale_client_id"],
                "TAILSCALE_OAUTH_CLIENT_SECRET": self.info["tailscale_client_secret"],
                "TAILSCALE_TAILNET": self.info["tailscale_tailnet"],
                "TAILSCALE_BASE_URL": self.info["tailscale_url"],
                "AURA_SANDBOX_URL": self.info["admin_url"],
            },
        )
        self.story.say(f"component logs: {self.log_dir}")

    def _start(self, name: str, args: list[str], env: dict[str, str]) -> ChildProcess:
        child = ChildProcess(name, args, env, self.log_dir)
        self.children.append(child)
        return child

    def _ensure_cluster(self) -> None:
        if os.environ.get("KUBECONFIG"):
            self.story.say(f"using the cluster in KUBECONFIG={os.environ['KUBECONFIG']}")
            return
        if not ENVTEST.exists():
            raise click.ClickException(
                "no KUBECONFIG set and hack/envtest.sh not found: run the demo from a checkout "
                "of the Aura repository, or point KUBECONFIG at a cluster"
            )
        status = subprocess.run(["bash", str(ENVTEST), "status"], capture_output=True)
        self.started_cluster = status.returncode != 0
        out = subprocess.run(
            ["bash", str(ENVTEST), "up"], capture_output=True, text=True, check=False
        )
        if out.returncode != 0:
            raise click.ClickException(f"hack/envtest.sh up failed:\n{out.stderr[-2000:]}")
        os.environ["KUBECONFIG"] = out.stdout.strip().splitlines()[-1].split("=", 1)[1]

    async def _install_crd_and_namespace(self) -> None:
        """Every Aura CRD (the operator reads them all: checkpoints for hibernation, images and
        pools for a new server, budgets), created or replaced, and the demo's namespace."""
        await config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
        async with client.ApiClient() as api:
            ext = client.ApiextensionsV1Api(api)
            for generate, _ in crd.KINDS.values():
                await _apply_crd(ext, generate())
            core = client.CoreV1Api(api)
            with contextlib.suppress(client.ApiException):
                await core.create_namespace(
                    client.V1Namespace(metadata=client.V1ObjectMeta(name=self.namespace))
                )
            custom = client.CustomObjectsApi(api)
            for _ in range(100):  # the CRD is served a moment after it is accepted
                try:
                    await custom.list_namespaced_custom_object(
                        GROUP, VERSION, self.namespace, PLURAL
                    )
                    return
                except client.ApiException:
                    await asyncio.sleep(0.1)

    def stop(self) -> None:
        """Stop what was started, newest first, and the control plane if it was started here."""
        for child in reversed(self.children):
            child.stop()
        if self.started_cluster:
            subprocess.run(["bash", str(ENVTEST), "down"], capture_output=True)
        shutil.rmtree(self.log_dir, ignore_errors=True)


async def _apply_crd(ext: client.ApiextensionsV1Api, body: dict[str, Any]) -> None:
    """Create the CRD, or replace one installed by an older build."""
    try:
        current = await ext.read_custom_resource_definition(body["metadata"]["name"])
    except client.ApiException as exc:
        if exc.status != 404:
            raise
        await ext.create_custom_resource_definition(body)  # type: ignore[arg-type]
        return
    body["metadata"]["resourceVersion"] = current.metadata.resource_version
    await ext.replace_custom_resource_definition(
        body["metadata"]["name"],
        body,  # type: ignore[arg-type]  # the client serialises plain dicts as-is
    )
