"""The status pages in a real browser (Debian's Chromium through Playwright), against a real
bridge on the real apiserver. Screenshots land in each test's tmp_path; their paths are printed
(`pytest -s` shows them)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from aura.bridge import tokens
from tests.bridge.browser import Proxy, chromium, host_page, write_phase
from tests.bridge.conftest import TOKEN, Bridge, checkout, serving
from tests.kube import Cluster

pytestmark = pytest.mark.integration
KEYS = (("k1", "b" * 40),)
STEPS = ["Queued", "Provisioning", "Configuring"]


async def advance(cluster: Cluster, ns: str, name: str, phases: list[str], **kw: Any) -> None:
    previous = None
    for phase in phases:
        await asyncio.to_thread(write_phase, cluster, ns, name, phase, previous, **kw)
        previous = phase


async def shows(page: Page, selector: str, within: float = 1.0) -> float:
    """Seconds until `selector` matches in `page`; fails past `within` seconds."""
    start = time.monotonic()
    await page.wait_for_selector(selector, timeout=within * 1000)
    return time.monotonic() - start


def shot(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    print(f"screenshot: {path}")
    return path


async def test_embedded_view_is_live_recovers_and_is_scoped(
    make_bridge: Any, cluster: Cluster, tmp_path: Path
) -> None:
    bridge: Bridge = await make_bridge(token_keys=KEYS)
    ns = bridge.namespace
    _, customer, _ = await checkout(bridge, "web-agent")
    await checkout(bridge, "second-agent")  # every checkout is a new customer
    _, other_customer, _ = await checkout(bridge, "other-customers")
    await advance(cluster, ns, "web-agent", STEPS)
    token = tokens.mint(KEYS, tokens.CUSTOMER_READ, customer=customer)

    async with serving(bridge.app) as bridge_url:
        port = int(bridge_url.rsplit(":", 1)[1])
        async with (
            Proxy(port) as proxy,
            serving(host_page(proxy.url, token)) as site,
            chromium() as browser,
        ):
            page = await browser.new_page(viewport={"width": 390, "height": 844})
            await page.goto(site)
            await shows(page, "article[data-phase=Configuring]", within=5)
            text = await page.inner_text("section.aura-status")
            assert "web-agent" in text and "other-customers" not in text
            assert "second-agent" not in text
            assert await page.get_attribute(".aura-step[data-step=Queued]", "class") == (
                "aura-step aura-done"
            )
            await shows(page, ".aura-conn[data-state=live]", within=5)
            # Landmarks and words, not colour alone.
            region = page.get_by_role("region", name="Agent status")
            assert await region.count() == 1
            current = await page.inner_text(".aura-step[aria-current=step]")
            assert "current step" in current and "so far" in current

            # A phase change written to the status shows within a second.
            start = time.monotonic()
            await asyncio.to_thread(
                write_phase, cluster, ns, "web-agent", "Networking", "Configuring"
            )
            await shows(page, "article[data-phase=Networking]")
            assert time.monotonic() - start < 1.0

            # A dropped connection: the page says so, and recovers with what it missed.
            proxy.down = True
            proxy.cut()
            await shows(page, ".aura-conn[data-state=reconnecting]", within=3)
            await asyncio.to_thread(write_phase, cluster, ns, "web-agent", "Running", "Networking")
            proxy.down = False
            await shows(page, "article[data-phase=Running]", within=8)
            await shows(page, ".aura-conn[data-state=live]", within=3)
            await page.click("article summary")
            await page.screenshot(path=shot(tmp_path, "embed-phone.png"), full_page=True)

            # The other customer's change never reaches this page.
            await advance(cluster, ns, "other-customers", ["Queued", "Failed"])
            await asyncio.sleep(0.5)
            assert "other-customers" not in await page.inner_text("body")

            # A second customer's embed shows a failure with its reason.
            await advance(
                cluster,
                ns,
                "other-customers",
                ["Provisioning", "Failed"],
                reason="ServerNeverBooted",
                message="the server did not boot within 600s",
            )
            other = tokens.mint(KEYS, tokens.CUSTOMER_READ, customer=other_customer)
            async with serving(host_page(bridge_url, other)) as other_site:
                wide = await browser.new_page(viewport={"width": 1024, "height": 640})
                await wide.goto(other_site)
                await shows(wide, "article[data-phase=Failed]", within=5)
                reason = await wide.inner_text(".aura-reason")
                assert "ServerNeverBooted" in reason and "did not boot" in reason
                assert "web-agent" not in await wide.inner_text("body")
                await wide.screenshot(path=shot(tmp_path, "embed-failed.png"), full_page=True)


async def test_fleet_page_live_filters_agent_page_and_actions(
    make_bridge: Any, cluster: Cluster, tmp_path: Path
) -> None:
    bridge: Bridge = await make_bridge(token_keys=KEYS)
    ns = bridge.namespace
    _, customer, _ = await checkout(bridge, "fleet-one")
    await checkout(bridge, "fleet-two")
    await advance(cluster, ns, "fleet-one", [*STEPS, "Networking", "Running"])
    await advance(cluster, ns, "fleet-two", ["Queued", "Provisioning"])
    writer = tokens.mint(KEYS, tokens.FLEET_WRITE, subject="ops@example.com")
    scoped = tokens.mint(KEYS, tokens.CUSTOMER_READ, customer=customer)

    async with serving(bridge.app) as url, chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 720})
        await page.goto(f"{url}/ui/fleet#token={TOKEN}")
        assert "token" not in page.url  # handed over, then removed from the address bar
        await shows(page, f"tr[data-agent='{ns}/fleet-one'][data-phase=Running]", within=5)
        await shows(page, f"tr[data-agent='{ns}/fleet-two'][data-phase=Provisioning]", within=5)
        assert await page.inner_text("#who") == "Read-only"
        assert await page.locator("button[data-action]").count() == 0

        start = time.monotonic()
        await asyncio.to_thread(
            write_phase, cluster, ns, "fleet-two", "Configuring", "Provisioning"
        )
        await shows(page, f"tr[data-agent='{ns}/fleet-two'][data-phase=Configuring]")
        assert time.monotonic() - start < 1.0

        await page.fill("#f-cus", customer)
        await shows(page, "#count:has-text('(1 of')", within=2)
        assert await page.locator(f"tr[data-agent='{ns}/fleet-two']").count() == 0
        await page.fill("#f-cus", "")
        # The fleet is cluster-wide (other tests' Agents too): narrow to this namespace.
        await page.select_option("#f-ns", ns)
        assert await page.locator("tbody tr").count() == 2
        await page.select_option("#f-phase", "Configuring")
        shown = await page.locator("tbody tr").evaluate_all("rs => rs.map(r => r.dataset.agent)")
        assert shown == [f"{ns}/fleet-two"]
        await page.select_option("#f-phase", "")
        await page.select_option("#f-ns", "")
        await page.screenshot(path=shot(tmp_path, "fleet.png"), full_page=True)

        # The per-Agent page: conditions, Events, phase history.
        await page.click(f"a[href='#agent={ns}/fleet-one']")
        await shows(page, "#conditions tbody tr", within=3)
        events = await page.inner_text("#events")
        assert "Networking -> Running" in events
        assert "Running" in await page.inner_text("#agent-card")
        await page.screenshot(path=shot(tmp_path, "fleet-agent.png"), full_page=True)

        # With a write token the page offers what the phase allows, and acting records who.
        actor = await browser.new_page(viewport={"width": 1280, "height": 720})
        await actor.goto(f"{url}/ui/fleet#token={writer}")
        await shows(actor, "#who:has-text('ops@example.com')", within=5)
        stop = actor.locator(f"tr[data-agent='{ns}/fleet-one'] button[data-action=stop]")
        await stop.click()
        await shows(actor, "#say:has-text('stop requested')", within=3)
        agent = bridge.agent("fleet-one")
        assert agent["spec"]["desiredState"] == "stopped"
        assert agent["metadata"]["annotations"]["aura.dev/last-action-by"] == "ops@example.com"
        # Still Running while it stops: start is not offered for it (the fleet page lists the
        # whole cluster's Agents, so only this row counts).
        row = f"tr[data-agent='{ns}/fleet-one']"
        assert await actor.locator(f"{row} button[data-action=start]").count() == 0

        # A customer-scoped token opens no fleet.
        outsider = await browser.new_page()
        await outsider.goto(f"{url}/ui/fleet#token={scoped}")
        await shows(outsider, "#error:has-text('scoped to one customer')", within=5)
        assert await outsider.locator("tbody tr").count() == 0
