"""`aura bridge`: run the Stripe webhook bridge and the agent status API (see `config` for the
environment). Kubernetes credentials come from `KUBECONFIG` (or ~/.kube/config), else from the
in-cluster service account. Refuses to start without a webhook secret or API tokens, so a
misconfigured deployment fails loudly instead of answering 400 to every genuine event.

The server is uvicorn with `protocol.guarded_protocol` (deadlines, connection and header caps)
and the app's `limits.RequestLimits` (bodies, webhook concurrency); every bound is a flag below.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import uvicorn

from aura.bridge.limits import Limits, LogRateLimit

log = logging.getLogger(__name__)
GC_YOUNG_THRESHOLD = 20_000


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
    from aura.bridge.protocol import guarded_protocol

    app = create_app(config, api, stripe_api)  # type: ignore[arg-type]
    limits = config.limits
    server_config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        http=guarded_protocol(limits, app.state.metrics.refuse),
        backlog=limits.backlog,
        timeout_keep_alive=limits.keepalive_timeout,
    )
    server_config.load()  # imports the protocol modules now, so the freeze below covers them
    # Everything imported or built so far lives as long as the process. Frozen, it is never
    # scanned again: each full collection over it (~110,000 objects) stalled every request in
    # flight, and those stalls were the bench's p99 tail at 200 events/s.
    gc.collect()
    gc.freeze()
    # Collect the young generation every 20,000 net allocations instead of 700. Each request
    # allocates hundreds of objects that live until it answers, so with the default a young
    # collection ran every few requests, found them all alive and promoted them: 5-7 % of the
    # bridge's CPU went to collections that freed nearly nothing, and the promoted objects
    # filled the old generations. Garbage of finished requests is freed by reference
    # counting; the collector is only there for the rare cycle.
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    server = uvicorn.Server(server_config)
    try:
        await server.serve()
    finally:
        if stripe_api is not None:
            await stripe_api.close()
        await api.close()  # type: ignore[attr-defined]


_DEFAULTS = Limits()
_LIMIT_FLAGS: list[tuple[str, type, str]] = [
    ("max_body_bytes", int, "Largest webhook body; a larger one is answered 413 unread."),
    ("max_inflight_webhooks", int, "Webhook requests in progress; more are answered 503."),
    ("max_buffered_bytes", int, "Webhook body bytes held at once; past it, 503."),
    ("max_connections", int, "Open connections; requests on more are answered 503."),
    ("header_timeout", float, "Seconds to receive a request line and headers (else 408)."),
    ("body_timeout", float, "Seconds to receive a body after its headers (else 408)."),
    ("max_header_bytes", int, "Largest request line plus headers (else 431)."),
    ("max_requests_per_connection", int, "Requests per keep-alive connection, then close."),
    ("max_streams_per_token", int, "Open event streams per API token; more get 429."),
    ("stream_idle_timeout", float, "Seconds an event stream may go without a change."),
]


def _limit_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for name, kind, text in reversed(_LIMIT_FLAGS):
        bound = click.IntRange(min=0) if kind is int else click.FloatRange(min=0)
        flag = "--" + name.replace("_", "-")
        func = click.option(
            flag,
            name,
            type=bound,
            default=getattr(_DEFAULTS, name),
            show_default=True,
            help=f"{text} 0 = no limit.",
        )(func)
    func = click.option(
        "--keepalive-timeout",
        type=click.IntRange(min=1),
        default=_DEFAULTS.keepalive_timeout,
        show_default=True,
        help="Seconds an idle keep-alive connection stays open.",
    )(func)
    return click.option(
        "--backlog",
        type=click.IntRange(min=1),
        default=_DEFAULTS.backlog,
        show_default=True,
        help="Connections the kernel queues before they are accepted.",
    )(func)


def _hibernate_after(value: str | None) -> float | None:
    from aura.bridge.dunning import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--hibernate-after") from None


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
    "--hibernate-after",
    help="How long an unpaid Agent stays suspended before it is hibernated: seconds or 72h, "
    "3d; 'never' keeps it suspended; price metadata aura_hibernate_after overrides it "
    "[env AURA_BRIDGE_HIBERNATE_AFTER; default 3d].",
)
@click.option(
    "--reread/--no-reread",
    default=True,
    show_default=True,
    help="Re-read each subscription from Stripe instead of trusting the event's object.",
)
@click.option("--log-format", type=click.Choice(["json", "text"]), default="json")
@_limit_options
def command(
    host: str,
    port: int,
    default_namespace: str | None,
    plans: str | None,
    past_due_grace: float | None,
    hibernate_after: str | None,
    reread: bool,
    log_format: str,
    **limits: Any,
) -> None:
    """Run the Stripe webhook bridge and the agent status API."""
    from aura.bridge.config import load_plans
    from aura.logs import configure_logging

    configure_logging(json_format=log_format == "json")
    # Both log every request at INFO: noise, and measurable latency at hundreds of events/s.
    for noisy in ("httpx", "httpcore", "stripe"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # uvicorn logs one warning per malformed request: one line per message per 10 s instead.
    logging.getLogger("uvicorn.error").addFilter(LogRateLimit(interval=10.0))
    budget, largest = limits["max_buffered_bytes"], limits["max_body_bytes"]
    if budget and largest and budget < largest:
        raise click.BadParameter(
            f"{budget} is below --max-body-bytes {largest}, so the largest allowed body could "
            "never be received: raise it or lower --max-body-bytes",
            param_hint="--max-buffered-bytes",
        )
    overrides: dict[str, Any] = {
        "default_namespace": default_namespace,
        "plans": load_plans(plans) if plans else None,
        "past_due_grace": past_due_grace,
        "hibernate_after": _hibernate_after(hibernate_after),
        "reread_subscription": reread,
        "limits": Limits(**limits),
    }
    try:
        import uvloop
    except ImportError:  # optional: plain asyncio works, only slower
        asyncio.run(_serve(host, port, overrides))
    else:
        uvloop.run(_serve(host, port, overrides))
