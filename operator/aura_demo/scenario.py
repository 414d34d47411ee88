"""The demo's story: one customer's agent from checkout to cancellation, on real components.

Everything runs for real on this machine: a kube-apiserver (or the cluster in `KUBECONFIG`),
`aura sandbox` (Hetzner, Tailscale and Stripe simulators), `aura operator` and `aura bridge`.
The script only acts as the customer and their bank: it calls the Stripe API (the official
client, pointed at the sandbox) and the sandbox's admin actions, then watches the Agent.

`run()` returns 0 when every step happened within its time limit, 1 otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import httpx
import stripe
from kubernetes_asyncio import client, config

from aura import crd
from aura.models import GROUP, PLURAL, VERSION
from aura.status_cli import render_table
from aura_demo.processes import ChildProcess, free_port

REPO = Path(__file__).resolve().parents[3]
ENVTEST = REPO / "hack" / "envtest.sh"


@dataclass
class Options:
    namespace: str
    time_scale: float
    keep: bool
    step_timeout: float


@dataclass
class StepResult:
    name: str
    expected: str
    observed: str = "-"
    seconds: float = 0.0
    ok: bool = False


@dataclass
class Story:
    """What the demo printed, for the closing summary."""

    started: float = field(default_factory=time.monotonic)
    steps: list[StepResult] = field(default_factory=list)

    def say(self, text: str) -> None:
        click.echo(f"[{time.monotonic() - self.started:6.1f}s] {text}")


class Demo:
    """Owns the components and the customer's objects for one run."""

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.story = Story()
        self.children: list[ChildProcess] = []
        self.started_cluster = False
        self.log_dir = Path(tempfile.mkdtemp(prefix="aura-demo-"))
        self.agent_name = f"acme-{secrets.token_hex(2)}"
        self.info: dict[str, Any] = {}
        self.api_token = secrets.token_urlsafe(24)
        self.bridge_url = ""

    # -- components -------------------------------------------------------------------------

    def bring_up(self) -> None:
        """Cluster, CRD, sandbox, bridge and operator; raises with a reason if one fails."""
        self.story.say("starting the control plane")
        self._ensure_cluster()
        asyncio.run(self._install_crd_and_namespace())
        bridge_port = free_port()
        self.bridge_url = f"http://127.0.0.1:{bridge_port}"
        webhook_secret = "whsec_" + secrets.token_urlsafe(24)
        self.story.say(f"starting aura sandbox (time scale {self.opts.time_scale})")
        sandbox = self._start(
            "sandbox",
            [
                "sandbox",
                "--port",
                "0",
                "--time-scale",
                str(self.opts.time_scale),
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
                "AURA_BRIDGE_NAMESPACE": self.opts.namespace,
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
                self.opts.namespace,
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
        await config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
        async with client.ApiClient() as api:
            ext = client.ApiextensionsV1Api(api)
            body = crd.agent_crd()
            try:
                current = await ext.read_custom_resource_definition(body["metadata"]["name"])
                body["metadata"]["resourceVersion"] = current.metadata.resource_version
                await ext.replace_custom_resource_definition(
                    body["metadata"]["name"],
                    body,  # type: ignore[arg-type]  # the client serialises plain dicts as-is
                )
            except client.ApiException as exc:
                if exc.status != 404:
                    raise
                await ext.create_custom_resource_definition(body)  # type: ignore[arg-type]
            core = client.CoreV1Api(api)
            with contextlib.suppress(client.ApiException):
                await core.create_namespace(
                    client.V1Namespace(metadata=client.V1ObjectMeta(name=self.opts.namespace))
                )
            custom = client.CustomObjectsApi(api)
            for _ in range(100):  # the CRD is served a moment after it is accepted
                try:
                    await custom.list_namespaced_custom_object(
                        GROUP, VERSION, self.opts.namespace, PLURAL
                    )
                    return
                except client.ApiException:
                    await asyncio.sleep(0.1)

    def tear_down(self) -> None:
        """Stop what the demo started, newest first (unless --keep)."""
        if self.opts.keep:
            self._print_keep_instructions()
            return
        for child in reversed(self.children):
            child.stop()
        if self.started_cluster:
            subprocess.run(["bash", str(ENVTEST), "down"], capture_output=True)
        shutil.rmtree(self.log_dir, ignore_errors=True)

    def _print_keep_instructions(self) -> None:
        click.echo(
            "\nEverything keeps running (--keep). Try:\n"
            f"  export KUBECONFIG={os.environ.get('KUBECONFIG', '')}\n"
            f"  kubectl get agents -n {self.opts.namespace}\n"
            f"  aura status -n {self.opts.namespace}\n"
            f"  curl -H 'Authorization: Bearer {self.api_token}' "
            f"{self.bridge_url}/v1/agents/{self.opts.namespace}/{self.agent_name}\n"
            f"  sandbox admin: {self.info.get('admin_url', '')}/world\n"
            f"Logs: {self.log_dir}\n"
            f"Stop: kill {' '.join(str(c.proc.pid) for c in self.children)}"
            + ("; make envtest-down" if self.started_cluster else "")
        )

    # -- the story --------------------------------------------------------------------------

    async def play(self) -> bool:
        """Walk the lifecycle; True when every step was observed."""
        stripe_client = stripe.StripeClient(
            self.info["stripe_api_key"], base_addresses={"api": self.info["stripe_url"]}
        )
        admin = httpx.AsyncClient(base_url=self.info["admin_url"], timeout=10)
        await config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
        async with client.ApiClient() as api, admin:
            watcher = PhaseWatcher(
                client.CustomObjectsApi(api), self.opts.namespace, self.agent_name, self.story
            )
            watch_task = asyncio.create_task(watcher.run())
            try:
                return await self._steps(stripe_client, admin, watcher)
            finally:
                watch_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watch_task

    async def _steps(
        self, sc: stripe.StripeClient, admin: httpx.AsyncClient, watcher: PhaseWatcher
    ) -> bool:
        ids: dict[str, str] = {}

        async def checkout() -> None:
            customer = await asyncio.to_thread(
                sc.customers.create, params={"email": "ops@acme.example", "name": "ACME"}
            )
            price = await asyncio.to_thread(
                sc.prices.create,
                params={
                    "currency": "eur",
                    "unit_amount": 1900,
                    "recurring": {"interval": "month"},
                    "product_data": {"name": "Always-on agent"},
                },
            )
            session = await asyncio.to_thread(
                sc.checkout.sessions.create,
                params={
                    "mode": "subscription",
                    "customer": customer.id,
                    "line_items": [{"price": price.id, "quantity": 1}],
                    "metadata": {
                        "agent_name": self.agent_name,
                        "agent_namespace": self.opts.namespace,
                    },
                    "success_url": "https://acme.example/welcome",
                },
            )
            completed = (await admin.post(f"/stripe/checkout/{session.id}/complete")).json()
            ids["subscription"] = completed["subscription"]

        async def fail_payment() -> None:
            await admin.post(f"/stripe/subscriptions/{ids['subscription']}/fail_payment")

        async def pay_invoice() -> None:
            sub = await asyncio.to_thread(sc.subscriptions.retrieve, ids["subscription"])
            invoice = sub.latest_invoice
            invoice_id = invoice if isinstance(invoice, str) else invoice.id  # type: ignore[union-attr]
            await admin.post(f"/stripe/invoices/{invoice_id}/pay")

        async def cancel() -> None:
            await asyncio.to_thread(sc.subscriptions.cancel, ids["subscription"])

        plan: list[tuple[str, Callable[[], Awaitable[None]], str]] = [
            ("checkout completed", checkout, "Running"),
            ("payment failed", fail_payment, "Suspended"),
            ("invoice paid", pay_invoice, "Running"),
            ("subscription cancelled", cancel, "Deleted"),
        ]
        for name, action, phase in plan:
            result = StepResult(name, expected=phase)
            self.story.steps.append(result)
            self.story.say(f"▶ {name}")
            began = time.monotonic()
            try:
                await action()
            except (stripe.StripeError, httpx.HTTPError, KeyError) as exc:
                result.observed = f"action failed: {type(exc).__name__}"
                self.story.say(f"✗ {name}: {exc}")
                return False
            result.ok = await watcher.wait_for(phase, began, self.opts.step_timeout)
            result.seconds = time.monotonic() - began
            result.observed = watcher.phase or "-"
            mark = "✓" if result.ok else "✗"
            self.story.say(f"{mark} {name} → {result.observed} in {result.seconds:.1f}s")
            if not result.ok:
                return False
        return True

    def summary(self) -> str:
        rows = [
            [s.name, s.expected, s.observed, f"{s.seconds:.1f}s", "ok" if s.ok else "FAILED"]
            for s in self.story.steps
        ]
        return render_table(["STEP", "EXPECTED", "OBSERVED", "TOOK", "RESULT"], rows)


class PhaseWatcher:
    """Polls one Agent and prints every phase change with how long the previous one took."""

    def __init__(
        self, api: client.CustomObjectsApi, namespace: str, name: str, story: Story
    ) -> None:
        self.api, self.namespace, self.name, self.story = api, namespace, name, story
        self.phase: str | None = None
        self.changed = asyncio.Event()
        self._since = time.monotonic()
        self._history: list[tuple[float, str]] = []

    async def run(self) -> None:
        created = False
        while True:
            try:
                obj = await self.api.get_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, self.name
                )
            except client.ApiException:
                obj = None
            if obj and not created:
                created = True
                self.story.say(f"  Agent {self.namespace}/{self.name} created by the bridge")
            phase = (obj or {}).get("status", {}).get("phase") if obj else None
            desired = (obj or {}).get("spec", {}).get("desiredState")
            if phase and phase != self.phase:
                now = time.monotonic()
                took = f" (previous phase took {now - self._since:.1f}s)" if self.phase else ""
                self.story.say(f"  phase {phase} [desired {desired}]{took}")
                self.phase, self._since = phase, now
                self._history.append((now, phase))
                self.changed.set()
            await asyncio.sleep(0.2)

    async def wait_for(self, phase: str, after: float, limit: float) -> bool:
        """True once the Agent entered `phase` at or after monotonic time `after`, within
        `limit` seconds from now."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if any(t >= after and p == phase for t, p in self._history):
                return True
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), timeout=0.5)
        return False


def run(opts: Options) -> int:
    """Run the whole demo; returns the process exit code."""
    demo = Demo(opts)
    ok = False
    try:
        demo.bring_up()
        ok = asyncio.run(demo.play())
    except KeyboardInterrupt:
        click.echo("\ninterrupted: cleaning up")
    except (RuntimeError, TimeoutError) as exc:
        click.echo(f"demo failed: {exc}", err=True)
    finally:
        if demo.story.steps:
            click.echo("\n" + demo.summary())
        demo.tear_down()
    return 0 if ok else 1
