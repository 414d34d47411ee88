"""Wiring: load credentials, build the Operator's clients, run kopf and the sweeper together.

Under `--peering` the sweeper only sweeps on the replica kopf lets act (see peering.py); with
`--shard` it does not run at all (the default shard sweeps for the fleet, shards.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import time
from types import SimpleNamespace

import httpx
import kopf
from prometheus_client import start_http_server

from aura.configure.base import Configurator
from aura.configure.proxy import ansible_ssh_env, http_proxy_url
from aura.controller import (
    checkpoint_handlers,
    credentials,
    handlers,
    image_handlers,
    naming,
    peering,
    pool_handlers,
    shards,
    watch_trim,
)
from aura.controller.checkpoints import erasure
from aura.controller.checkpoints.store import KubeCheckpointStore
from aura.controller.checkpoints.sweeper import ImageSweeper
from aura.controller.clients.gateway_service import (
    SERVICE_PLAYBOOK,
    GatewayService,
    PlaybookGatewayService,
)
from aura.controller.clients.hetzner import HcloudAdapter
from aura.controller.clients.hosts import DirectHosts, HostObserver
from aura.controller.clients.kube import KubeClients
from aura.controller.clients.ratelimit import AsyncPacer, RateLimiter
from aura.controller.clients.sandbox_world import (
    SandboxGatewayService,
    SandboxHosts,
    SimulatedConfigurator,
)
from aura.controller.clients.servercache import ServerCache
from aura.controller.clients.tailscale import TailscaleAdapter
from aura.controller.reconcile import drift
from aura.controller.reconcile.sweeper import Sweeper
from aura.controller.runtime import Operator
from aura.controller.settings import OperatorConfig, configure_kopf
from aura.cost import runner as cost_runner

log = logging.getLogger("aura.operator")


def _configurator(config: OperatorConfig, http: httpx.AsyncClient) -> Configurator:
    kind = config.configurator
    if kind == "auto":
        kind = "simulated" if config.sandbox else "ansible"
    if kind == "simulated":
        if not config.sandbox_url:
            raise ValueError("the simulated configurator needs AURA_SANDBOX_URL")
        return SimulatedConfigurator(config.sandbox_url, http)
    from aura.configure.ansible import AnsibleConfigurator

    return AnsibleConfigurator(
        playbook=config.ansible_playbook,
        timeout_seconds=config.configure_timeout,
        extra_env=ansible_ssh_env(config.tailnet_proxy),
    )


def gateway_client(config: OperatorConfig) -> httpx.AsyncClient:
    """The client of the gateway probes (to tailnet addresses: through the sidecar's proxy when
    there is one) and of the sandbox's admin API.

    No cap on connections: httpcore leaves a connection stuck CONNECTING in its pool when the
    request that opened it is cancelled meanwhile (encode/httpcore#1093, unfixed), and once
    `max_connections` of them piled up every probe failed with PoolTimeout against healthy
    gateways (the 2,000-Agent bench: 100 of 100 stuck, 181 requests waiting). Without a cap a
    stuck entry costs a few hundred bytes and blocks nothing; idle keep-alives stay bounded."""
    return httpx.AsyncClient(
        timeout=config.health_timeout,
        proxy=http_proxy_url(config.tailnet_proxy),
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=GATEWAY_KEEPALIVE),
    )


GATEWAY_KEEPALIVE = 50
"""Idle connections the gateway client keeps open."""


async def build_operator(config: OperatorConfig, kube: KubeClients) -> Operator:
    http = gateway_client(config)
    limiter = RateLimiter(
        reserve_share=config.rate_limit_reserve, max_backoff=config.rate_limit_max_backoff
    )
    hetzner = HcloudAdapter(
        token=config.hcloud_token,
        endpoint=config.hcloud_endpoint,
        limiter=limiter,
        token_source=config.hcloud_token_source,
    )
    hosts: HostObserver = (
        SandboxHosts(http, config.sandbox_url) if config.sandbox_url else DirectHosts()
    )
    configurator = _configurator(config, http)
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
            pacer=AsyncPacer(config.tailscale_rate_limit, burst=20),
        ),
        limiter=limiter,
        secrets=kube,
        events=kube,
        agents=kube,
        hosts=hosts,
        configurator=configurator,
        http=http,
        checkpoints=KubeCheckpointStore(kube.api),
        gateway_service=_gateway_service(config, configurator),
    )


def _gateway_service(config: OperatorConfig, configurator: Configurator) -> GatewayService:
    """How the gateway service is started, stopped (a consistent checkpoint) and restarted
    (the repair ladder): clients/gateway_service.py."""
    if isinstance(configurator, SimulatedConfigurator):
        return SandboxGatewayService(configurator.admin_url, configurator.http)
    from aura.configure.ansible import AnsibleConfigurator

    return PlaybookGatewayService(
        AnsibleConfigurator(
            playbook=SERVICE_PLAYBOOK,
            timeout_seconds=config.configure_timeout,
            extra_env=ansible_ssh_env(config.tailnet_proxy),
        )
    )


async def _sweep_forever(op: Operator, kube: KubeClients, gate: peering.PeeringGate) -> None:
    """Sweep every `--sweep-interval`, on the active peering replica only (peering.py).

    The orphan sweep reads the shared server list (no Hetzner call); the image sweep lists
    images, so it runs only once per drift period (reconcile/drift.py), not every pass."""
    sweeper, images = Sweeper(op), ImageSweeper(op)
    images_at = -math.inf
    while True:
        await asyncio.sleep(op.config.sweep_interval)
        try:
            if not await gate.active():
                # a standby's grace clocks would be stale on takeover
                sweeper, images = Sweeper(op), ImageSweeper(op)
                continue
            agents = await kube.list_agents(op.config.namespace)
            await sweeper.sweep(agents)
            if time.monotonic() - images_at >= drift.current_period(op):
                images_at = time.monotonic()
                await images.sweep()  # hook: checkpoints
            await erasure.sweep(op, agents)  # --retain-after-delete
        except Exception as exc:  # the next pass retries; never let the sweeper die
            log.warning("orphan sweep failed: %s", exc)


async def run_operator(op: Operator, kube: KubeClients, stop: asyncio.Event) -> None:
    """Run kopf and the sweeper until `stop` is set."""
    config = op.config
    if config.metrics_port:
        start_http_server(config.metrics_port)
    registry = kopf.OperatorRegistry()
    handlers.register(registry, config)
    checkpoint_handlers.register(registry, config)  # hook: checkpoints
    if shards.runs_fleet_duties(config.shard):
        image_handlers.register(registry, config)  # hook: golden images
        pool_handlers.register(registry, config)  # hook: warm pools
        cost_runner.register(registry)  # hook: cost and budgets
    cost = cost_runner.build(op, kube)
    settings = kopf.OperatorSettings()
    configure_kopf(settings, config)
    watch_trim.install()  # kopf keeps each Agent's body; managedFields is dead weight there
    stop_flag: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def relay_stop() -> None:
        await stop.wait()
        stop_flag.set_result(None)

    identity = peering.own_identity()
    gate = peering.PeeringGate(
        kube, config.peering, config.namespace, identity=identity, priority=config.priority
    )
    tasks = [
        asyncio.create_task(op.loop_lag.run()),  # probes read it (reconcile/health.py)
        asyncio.create_task(drift.sweep_forever(op, gate.active)),  # this process's server list
        asyncio.create_task(relay_stop()),
    ]
    if shards.runs_fleet_duties(config.shard):  # once per fleet: the default shard's job
        tasks.append(asyncio.create_task(_sweep_forever(op, kube, gate)))
        tasks.append(asyncio.create_task(cost_runner.refresh_forever(cost, gate)))
    try:
        await kopf.operator(
            registry=registry,
            settings=settings,
            memo=SimpleNamespace(operator=op, cost=cost),
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
            "shard": config.shard or "default",
        },
    )
    keeper = None
    if config.tailnet_sidecar_secret:
        # The tailnet sidecar's own auth key: minted now, renewed daily (sidecar_key.py).
        from aura.controller.sidecar_key import SidecarKey, keep_sidecar_key, parse_secret_ref

        namespace, name = parse_secret_ref(config.tailnet_sidecar_secret)
        want = SidecarKey(namespace=namespace, name=name, tag=config.tailnet_sidecar_tag)
        keeper = asyncio.create_task(keep_sidecar_key(op.tailnet, kube.api, want))
    try:
        await run_operator(op, kube, stop)
    finally:
        if keeper is not None:
            keeper.cancel()
