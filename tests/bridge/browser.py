"""Helpers for the status pages' browser tests and their benchmark: Debian's Chromium driven by
Playwright (no browser is ever downloaded), a page on another origin that embeds the view, a TCP
proxy whose connections can be cut, and phase changes written the way the operator writes them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from playwright.async_api import Browser, async_playwright
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from aura.models import GROUP, PLURAL, VERSION
from tests.kube import Cluster

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """The system Chromium, headless."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


def host_page(bridge_url: str, token: str) -> Starlette:
    """A customer's SaaS page on its own origin, embedding the view with the one tag."""
    html = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>My account</title>
</head><body style="margin:0;padding:1rem;font-family:sans-serif;background:#f6f8fa">
<header><h1 style="font-size:1.3rem">Acme AI &mdash; my account</h1></header><main>
<script src="{bridge_url}/ui/embed.js" data-token="{token}" async></script>
</main></body></html>"""

    async def index(request: Any) -> HTMLResponse:
        return HTMLResponse(html)

    return Starlette(routes=[Route("/", index)])


class Proxy:
    """A loopback TCP proxy to `upstream`; `cut()` drops every connection and, while `down`,
    refuses new ones: a network drop as the browser sees it."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.down = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Proxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cut()
        assert self._server is not None
        self._server.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.discard(writer)
        self._writers.discard(up_writer)


def write_phase(
    cluster: Cluster,
    namespace: str,
    name: str,
    phase: str,
    previous: str | None = None,
    *,
    reason: str | None = None,
    message: str = "",
) -> None:
    """What the operator writes on a phase change: the status (phase, phaseSince, the Ready
    condition), then the phase's Event, `"A -> B after Ns in A"`."""
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    ready = {
        "type": "Ready",
        "status": "True" if phase == "Running" else "False",
        "reason": reason or phase,
        "message": message,
        "lastTransitionTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    client.CustomObjectsApi(cluster.api).patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        name,
        {
            "status": {
                "phase": phase,
                "phaseSince": stamp,
                "message": message,
                "conditions": [ready],
            }
        },
    )
    was = previous or "(new)"
    event = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": f"{name}.{time.time_ns():x}", "namespace": namespace},
        "eventTime": stamp,
        "reportingController": "aura.dev/operator",
        "reportingInstance": "test",
        "action": "Reconcile",
        "reason": phase,
        "type": "Warning" if phase == "Failed" else "Normal",
        "note": f"{was} -> {phase}",
        "regarding": {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Agent",
            "name": name,
            "namespace": namespace,
        },
    }
    client.EventsV1Api(cluster.api).create_namespaced_event(namespace, event)
