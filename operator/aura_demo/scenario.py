"""The demo's story: customers from checkout to cancellation, on real components.

ACME walks the whole lifecycle (checkout → Running, payment failed → Suspended, invoice paid →
Running, cancelled → Deleted). Then two more customers sign up and one of them misses a payment,
so the demo leaves a small fleet behind: one Agent Running, one Suspended, besides ACME's
cancelled record. Finally Umbrella shows the dunning timeline (`dunning`): its payment fails,
its Agent is suspended, then hibernated (no server, its data in a checkpoint), and wakes up
with its data when the invoice is paid. With `--keep` everything stays up to be explored.

The script only acts as the customers and their bank (`customers`); the components
(`components`) do the rest, and a watch (`watcher`) reports every phase the operator writes.
At the end it prints ACME's history (its Kubernetes Events, in the order they happened).

`run()` returns 0 when every step happened within its time limit, 1 otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import click
import httpx
import stripe
from kubernetes_asyncio import client, config

from aura import history
from aura.status_cli import event_rows, render_table
from aura_demo import dunning
from aura_demo.components import Components
from aura_demo.customers import Bank, Customer
from aura_demo.story import StepResult, Story
from aura_demo.watcher import PhaseWatcher


@dataclass
class Options:
    namespace: str
    time_scale: float
    keep: bool
    step_timeout: float


Action = Callable[[Customer], Awaitable[None]]


class Demo:
    """Owns the components and the customers for one run."""

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.story = Story()
        self.components = Components(opts.namespace, opts.time_scale, self.story)
        self.acme = Customer("ACME", opts.namespace)
        self.globex = Customer("Globex", opts.namespace)
        self.initech = Customer("Initech", opts.namespace)
        self.umbrella = Customer("Umbrella", opts.namespace, hibernate_after=dunning.GRACE)
        self.customers = [self.acme, self.globex, self.initech, self.umbrella]
        self.memory: dunning.Memory | None = None

    def plan(self, bank: Bank) -> list[tuple[str, Customer, Action, str]]:
        """(step, customer, what they do, the phase their Agent must reach)."""
        return self._lifecycle(bank) + self._dunning(bank)

    def _dunning(self, bank: Bank) -> list[tuple[str, Customer, Action, str]]:
        """Umbrella's unpaid Agent hibernates and wakes with its data (see `dunning`)."""
        if self.memory is None:
            raise RuntimeError("Demo.plan runs inside Demo.run, which opens the sandbox")
        memory, who = self.memory, self.umbrella
        return [
            ("checkout completed", who, bank.checkout, "Running"),
            ("notes written on its disk", who, memory.remember, "Running"),
            ("payment failed", who, bank.fail_payment, "Suspended"),
            (f"unpaid for {dunning.GRACE} (plan's grace)", who, dunning.nothing, "Hibernated"),
            ("invoice paid", who, bank.pay_invoice, "Running"),
            ("notes still there after waking", who, memory.recall, "Running"),
        ]

    def _lifecycle(self, bank: Bank) -> list[tuple[str, Customer, Action, str]]:
        return [
            ("checkout completed", self.acme, bank.checkout, "Running"),
            ("payment failed", self.acme, bank.fail_payment, "Suspended"),
            ("invoice paid", self.acme, bank.pay_invoice, "Running"),
            ("subscription cancelled", self.acme, bank.cancel, "Deleted"),
            ("checkout completed", self.globex, bank.checkout, "Running"),
            ("checkout completed", self.initech, bank.checkout, "Running"),
            ("payment failed", self.initech, bank.fail_payment, "Suspended"),
        ]

    async def play(self) -> bool:
        """Walk the plan; True when every step was observed."""
        info = self.components.info
        sc = stripe.StripeClient(info["stripe_api_key"], base_addresses={"api": info["stripe_url"]})
        admin = httpx.AsyncClient(base_url=info["admin_url"], timeout=10)
        await config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
        async with client.ApiClient() as api, admin:
            watcher = PhaseWatcher(
                client.CustomObjectsApi(api),
                self.opts.namespace,
                {c.agent for c in self.customers},
                self.story,
            )
            self.memory = dunning.Memory(client.CustomObjectsApi(api), admin)
            watch_task = asyncio.create_task(watcher.run())
            try:
                ok = await self._steps(Bank(sc, admin), watcher)
            finally:
                watch_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watch_task
            await self._print_history(api, self.acme)
            return ok

    async def _steps(self, bank: Bank, watcher: PhaseWatcher) -> bool:
        for name, customer, action, phase in self.plan(bank):
            result = StepResult(f"{customer.label}: {name}", customer.agent, expected=phase)
            self.story.steps.append(result)
            self.story.say(f"▶ {result.name}")
            began = time.monotonic()
            stays = watcher.phase(customer.agent) == phase  # e.g. notes written while Running
            try:
                await action(customer)
            except (stripe.StripeError, httpx.HTTPError, KeyError, dunning.DataLost) as exc:
                result.observed = f"action failed: {type(exc).__name__}"
                self.story.say(f"✗ {result.name}: {exc}")
                return False
            result.ok = await watcher.wait_for(
                customer.agent, phase, began, self.opts.step_timeout, stays=stays
            )
            result.seconds = time.monotonic() - began
            result.observed = watcher.phase(customer.agent) or "-"
            result.path = watcher.path(customer.agent, began)
            mark = "✓" if result.ok else "✗"
            self.story.say(
                f"{mark} {result.name} → {result.observed} in {result.seconds:.1f}s"
                f" (phases: {' → '.join(result.path) or '-'})"
            )
            if not result.ok:
                return False
        return True

    async def _print_history(self, api: client.ApiClient, customer: Customer) -> None:
        """The Agent's Events as `aura status NAME --events` shows them."""
        with contextlib.suppress(client.ApiException):
            events = await history.read_events(api, self.opts.namespace, customer.agent)
            click.echo(
                f"\nHistory of {customer.agent} (Kubernetes Events, in the order they happened):"
            )
            header = ["AGE", "TYPE", "REASON", "FROM", "MESSAGE"]
            click.echo(render_table(header, event_rows(events, datetime.now(UTC))))

    def keep_instructions(self) -> str:
        """What is left running and how to look at it (`--keep`)."""
        ns, c = self.opts.namespace, self.components
        fleet = "\n".join(
            f"  {cust.agent:<14} {self._fate(cust)}" for cust in self.customers if cust.subscription
        )
        return (
            f"\nEverything keeps running (--keep). The fleet in namespace {ns}:\n{fleet}\n"
            "Try:\n"
            f"  export KUBECONFIG={os.environ.get('KUBECONFIG', '')}\n"
            f"  kubectl get agents -n {ns}\n"
            f"  aura status -n {ns}\n"
            f"  aura status -n {ns} {self.acme.agent} --events\n"
            f"  curl -H 'Authorization: Bearer {c.api_token}' "
            f"{c.bridge_url}/v1/agents/{ns}/{self.globex.agent}\n"
            f"  curl -H 'Authorization: Bearer {c.api_token}' "
            f"{c.bridge_url}/v1/agents/{ns}/{self.acme.agent}/history\n"
            f"  sandbox admin: {c.info.get('admin_url', '')}/world\n"
            f"Logs: {c.log_dir}\n"
            f"Stop: kill {' '.join(str(child.proc.pid) for child in c.children)}"
            + ("; make envtest-down" if c.started_cluster else "")
        )

    def _fate(self, customer: Customer) -> str:
        steps = [s for s in self.story.steps if s.agent == customer.agent]
        if not steps:
            return "-"
        last = steps[-1]
        return f"{last.observed:<10} (last step: {last.name.split(': ', 1)[1]})"

    def tear_down(self) -> None:
        """Stop what the demo started, newest first, unless --keep."""
        if self.opts.keep:
            click.echo(self.keep_instructions())
            return
        self.components.stop()


def run(opts: Options) -> int:
    """Run the whole demo; returns the process exit code."""
    demo = Demo(opts)
    ok = False
    try:
        demo.components.bring_up()
        ok = asyncio.run(demo.play())
    except KeyboardInterrupt:
        click.echo("\ninterrupted: cleaning up")
    except (RuntimeError, TimeoutError) as exc:
        click.echo(f"demo failed: {exc}", err=True)
    finally:
        if demo.story.steps:
            click.echo("\n" + demo.story.summary())
        demo.tear_down()
    return 0 if ok else 1
