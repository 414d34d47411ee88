"""`aura bridge`: run the Stripe webhook bridge and the agent status API (see `config` for the
environment). Kubernetes credentials come from `KUBECONFIG` (or ~/.kube/config), else from the
in-cluster service account. Refuses to start without a webhook secret or API tokens, so a
misconfigured deployment fails loudly instead of answering 400 to every genuine event.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from pathlib import Path
from typing import Any

import click
import uvicorn

log = logging.getLogger(__name__)


async def _api_client() -> object:
    from kubernetes_asyncio import client, config

    kubeconfig = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    if os.path.exists(kubeconfig):  # noqa: ASYNC240 (once, at startup)
        return await config.new_client_from_config(config_file=kubeconfig)
    config.load_incluster_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


async def _serve(host: str, port: int, overrides: dict[str, Any]) -> None:
    from aura.bridge.app import create_app
    from aura.bridge.config import BridgeConfig
    from aura.bridge.stripe_api import StripeClientApi

    config = BridgeConfig.from_env(None, **overrides)
    if not config.webhook_secrets:
        raise click.UsageError("STRIPE_WEBHOOK_SECRET is not set")
    if not config.api_tokens:
        raise click.UsageError("AURA_API_TOKENS (or AURA_API_TOKENS_FILE) is not set")
    api = await _api_client()
    stripe_api = (
        StripeClientApi(config.stripe_api_key, config.stripe_api_base, config.stripe_timeout)
        if config.stripe_api_key
        else None
    )
    if stripe_api is None:
        log.warning("STRIPE_API_KEY is not set: states come from the events' own objects")
    app = create_app(config, api, stripe_api)  # type: ignore[arg-type]
    server_config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
    server_config.load()  # imports the protocol modules now, so the freeze below covers them
    # Everything imported or built so far lives as long as the process. Frozen, it is never
    # scanned again: each full collection over it (~110,000 objects) stalled every request in
    # flight, and those stalls were the bench's p99 tail at 200 events/s.
    gc.collect()
    gc.freeze()
    server = uvicorn.Server(server_config)
    try:
        await server.serve()
    finally:
        if stripe_api is not None:
            await stripe_api.close()
        await api.close()  # type: ignore[attr-defined]


@click.command("bridge")
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option("--default-namespace", help="Namespace for new Agents [env AURA_BRIDGE_NAMESPACE].")
@click.option("--plans", help="Plan map: a YAML/JSON file or inline JSON [env AURA_BRIDGE_PLANS].")
@click.option(
    "--past-due-grace",
    type=float,
    help="Seconds to keep a past_due Agent running [env AURA_BRIDGE_PAST_DUE_GRACE; default 0].",
)
@click.option(
    "--reread/--no-reread",
    default=True,
    show_default=True,
    help="Re-read each subscription from Stripe instead of trusting the event's object.",
)
@click.option("--log-format", type=click.Choice(["json", "text"]), default="json")
def command(
    host: str,
    port: int,
    default_namespace: str | None,
    plans: str | None,
    past_due_grace: float | None,
    reread: bool,
    log_format: str,
) -> None:
    """Run the Stripe webhook bridge and the agent status API."""
    from aura.bridge.config import load_plans
    from aura.logs import configure_logging

    configure_logging(json_format=log_format == "json")
    # Both log every request at INFO: noise, and measurable latency at hundreds of events/s.
    for noisy in ("httpx", "httpcore", "stripe"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    overrides: dict[str, Any] = {
        "default_namespace": default_namespace,
        "plans": load_plans(plans) if plans else None,
        "past_due_grace": past_due_grace,
        "reread_subscription": reread,
    }
    try:
        import uvloop
    except ImportError:  # optional: plain asyncio works, only slower
        asyncio.run(_serve(host, port, overrides))
    else:
        uvloop.run(_serve(host, port, overrides))
