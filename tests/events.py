"""Posting a burst of Agent Events within one second, through the operator's own client."""

from __future__ import annotations

import asyncio
import time

from aura.controller.clients.kube import AgentRef, KubeClients

# Phase Events of one quick provisioning, in the order they happen.
BURST = ["Provisioning", "Configuring", "Networking", "Starting", "Running", "Degraded"]


async def post_burst_in_one_second(ref: AgentRef) -> None:
    """Post `BURST` as the operator does (events.k8s.io/v1, `KubeClients.post`), all inside
    one wall-clock second: the names the apiserver generates (and so its list order) are
    random, and second-resolution timestamps would all be equal."""
    kube = await KubeClients.connect()
    try:
        await asyncio.sleep(1 - time.time() % 1 + 0.01)  # the start of a fresh second
        second = int(time.time())
        for reason in BURST:
            await kube.post(ref, "Normal", reason, f"phase {reason}")
        assert int(time.time()) == second, "the burst took more than a second"
    finally:
        await kube.close()
