"""Wiring: load credentials, build the Operator's clients, run kopf and the sweeper together.

Under `--peering` the sweeper only sweeps on the replica kopf lets act (see peering.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from types import SimpleNamespace

import httpx
import kopf
from prometheus_client import start_http_server

from aura.configure.base import Configurator
from aura.controller import credentials, handlers, naming, peering
from aura.controller.clients.gateway import ConfiguratorGatewayService, GatewayService
from aura.controller.clients.hetzner import HcloudAdapter
from aura.controller.clients.hosts import DirectHosts, HostObserver
from aura.controller.clients.kube import KubeClients
from aura.controller.clients.ratelimit import RateLimiter
from aura.controller.clients.sandbox_world import (
    SandboxGatewayService,
    SandboxHosts,
    SimulatedConfigurator,
)
from aura.controller.clients.servercache import ServerCache
from aura.controller.clients.tailscale import TailscaleAdapter
from aura.controller.reconcile.sweeper import Sweeper
from aura.controller.runtime import Operator
from aura.controller.settings import OperatorConfig, configure_kopf

log = logging.getLogger("aura.operator")


def _configurator(config: OperatorConfig) -> Configurator:
    kind = config.configurator
    if kind == "auto":
        kind = "simulated" if config.sandbox else "ansible"
    if kind == "simulated":
        if not config.sandbox_url:
            raise ValueError("the simulated configurator needs AURA_SANDBOX_URL")
        return SimulatedConfigurator(config.sandbox_url)
    from aura.configure.ansible import AnsibleConfigurator

    return AnsibleConfigurator(
        playbook=config.ansible_playbook, timeout_seconds=config.configure_timeout
    )


def _gateway_service(config: OperatorConfig, http: httpx.AsyncClient) -> GatewayService:
    """The repair ladder's restart: the sandbox's admin endpoint, or the restart playbook
    through Ansible with the configurator's connection settings."""
    if config.sandbox_url and config.configurator in ("auto", "simulated"):
        return SandboxGatewayService(http, config.sandbox_url)
    from aura.configure.ansible import AnsibleConfigurator

    return ConfiguratorGatewayService(
        AnsibleConfigurator(playbook="restart-gateway.yml", timeout_seconds=120.0)
    )


async def build_operator(config: OperatorConfig, kube: KubeClients) -> Operator:
    http = httpx.AsyncClient(timeout=config.health_timeout)
    hetzner = HcloudAdapter(
        token=config.hcloud_token,
        endpoint=config.hcloud_endpoint,
        limiter=RateLimiter(max_backoff=config.rate_limit_max_backoff),
        token_source=config.hcloud_token_source,
    )
    hosts: HostObserver = (
        SandboxHosts(http, config.sandbox_url) if config.sandbox_url else DirectHosts()
    )
    return Operator(
        config=config,
        hetzner=hetzner,
        servers=ServerCache(
            hetzner, label_selector=naming.MANAGED_SELECTOR, max_age=config.server_list_max_age
        ),
        tailnet=TailscaleAdapter(
            base_url=config.tailscale_base_url,
            client_id=config.tailscale_client_id,
            client_secret=config.tailscale_client_secret,
            tailnet=config.tailscale_tailnet,
            credentials_source=config.tailscale_source,
        ),
        secrets=kube,
        events=kube,
        agents=kube,
        hosts=hosts,
        configurator=_configurator(config),
        http=http,
        gateway_service=_gateway_service(config, http),
    )


async def _sweep_forever(op: Operator, kube: KubeClients, gate: peering.PeeringGate) -> None:
    """Sweep every `--sweep-interval`, on the active peering replica only (peering.py)."""
    sweeper = Sweeper(op)
    while True:
        await asyncio.sleep(op.config.sweep_interval)
        try:
            if not await gate.active():
                sweeper = Sweeper(op)  # a standby's grace clocks would be stale on takeover
                continue
            await sweeper.sweep(await kube.list_agents(op.config.namespace))
        except Exception as exc:  # the next pass retries; never let the sweeper die
            log.warning("orphan sweep failed: %s", exc)


async def run_operator(op: Operator, kube: KubeClients, stop: asyncio.Event) -> None:
    """Run kopf and the sweeper until `stop` is set."""
    config = op.config
    if config.metrics_port:
        start_http_server(config.metrics_port)
    registry = kopf.OperatorRegistry()
    handlers.register(registry, config)
    settings = kopf.OperatorSettings()
    configure_kopf(settings, config)
    stop_flag: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def relay_stop() -> None:
        await stop.wait()
        stop_flag.set_result(None)

    identity = peering.own_identity()
    gate = peering.PeeringGate(
        kube, config.peering, config.namespace, identity=identity, priority=config.priority
    )
    tasks = [
        asyncio.create_task(_sweep_forever(op, kube, gate)),
        asyncio.create_task(relay_stop()),
    ]
    try:
        await kopf.operator(
            registry=registry,
            settings=settings,
            memo=SimpleNamespace(operator=op),
            namespaces=[config.namespace] if config.namespace else [],
            clusterwide=not config.namespace,
            # Mandatory peering under `--peering`, else standalone (one replica); peering.py.
            standalone=not config.peering,
            peering_name=config.peering,
            priority=config.priority,
            identity=identity,
            liveness_endpoint=config.liveness,
            stop_flag=stop_flag,
        )
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await op.http.aclose()
        await kube.close()


async def main(config: OperatorConfig, credentials_secret: str | None) -> None:
    """`aura operator` after parsing: credentials, clients, then run until SIGTERM/SIGINT."""
    kube = await KubeClients.connect()
    if credentials_secret:
        config = await credentials.from_secret(kube, config, credentials_secret)
    credentials.require(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    op = await build_operator(config, kube)
    log.info(
        "starting operator",
        extra={
            "namespace": config.namespace or "*",
            "sandbox": config.sandbox,
            "peering": config.peering or "standalone",
            "priority": config.priority,
        },
    )
    await run_operator(op, kube, stop)
