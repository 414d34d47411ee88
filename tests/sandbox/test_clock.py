"""The timing model (`aura_sandbox.clock`): figures that match their sources, durations at
`--time-scale 1`, and the configurator's full install versus configuration-only run on a host
that already has the packages (a golden image)."""

from __future__ import annotations

import ast
import inspect
import time
from typing import Any

import hcloud
import pytest
from hcloud.images import Image

from aura_sandbox import clock, lifecycle, lifecycle_images
from aura_sandbox.clock import Timings
from aura_sandbox.harness import Sandbox
from aura_sandbox.world import World
from tests.sandbox.conftest import FAST, admin
from tests.sandbox.hetzner_support import create, running


def _configure(sb: Sandbox, server_id: int, **body: Any) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    response = admin(
        sb,
        "POST",
        f"/servers/{server_id}/configure",
        json={"openclaw_version": "2026.3.1", "wait": True, **body},
    )
    assert response.status_code == 200, response.text
    return response.json(), time.monotonic() - started


def test_every_figure_names_its_source() -> None:
    """Each field of the table is documented, and the text says where the figure comes from
    (an issue, a document) or that it is an estimate or a model choice."""
    tree = ast.parse(inspect.getsource(clock.Timings))
    body = tree.body[0].body  # type: ignore[attr-defined]
    fields = [n for n in body if isinstance(n, ast.AnnAssign)]
    assert len(fields) >= 18
    for i, node in enumerate(body):
        if not isinstance(node, ast.AnnAssign):
            continue
        # A field's docstring is the next string expression (pairs like base/per_gb share one).
        following = body[i + 1 :]
        doc = next(
            (n.value.value for n in following if isinstance(n, ast.Expr)),
            "",
        )
        name = node.target.id  # type: ignore[attr-defined]
        assert doc, f"{name} has no docstring"
        sourced = any(mark in doc for mark in ("#", ".md", "docs", "Estimate", "model choice"))
        # A measurement is a source when it names the test that took it.
        measured = "Measured" in doc and "tests/" in doc
        assert sourced or measured, f"{name}: the docstring names no source and says no estimate"


def test_the_model_fits_its_sources() -> None:
    t = Timings()
    # "60 to 90 seconds on average" from create to running (Ansible hcloud module).
    assert 60 <= t.create_server + t.boot <= 90
    # Snapshots "typically take 1-5 minutes depending on the disk size" (hetsnap.com), for the
    # used sizes an agent host has: a fresh system up to 25 GB.
    for used in (t.system_image_used_gb, 25):
        assert 60 <= t.snapshot_seconds(used) <= 300
    assert t.snapshot_seconds(10) > t.snapshot_seconds(2)
    # From a snapshot: Terraform measured 1m09s to 2m11s (terraform-provider-hcloud#966),
    # for ordinary snapshot sizes.
    for size in (3, 20):
        total = t.create_server + t.restore_seconds(size) + t.boot
        assert 69 <= total <= 131 + 15
    # A golden image must leave only the configuration.
    assert (
        t.configure_seconds(packages_installed=True)
        < t.configure_seconds(packages_installed=False) / 5
    )


def test_time_scale_one_uses_the_table_as_is() -> None:
    """At `--time-scale 1` the scheduled durations are the table's seconds (no waiting here:
    the test only reads what was scheduled)."""
    t = Timings()

    def boot_and_start(world: World) -> dict[str, float]:
        server, create_action, (start,) = lifecycle.create_server(
            world,
            name="real-time",
            server_type="cx22",
            location="fsn1",
            image_id=161547269,
            labels={},
            user_data=None,
            ssh_keys=[],
            firewalls=[],
            start_after_create=True,
        )
        lifecycle.booted(world, server)  # skip the minute of boot
        server.lock_actions.clear()
        _, snap = lifecycle_images.create_image(
            world,
            server,
            image_type="snapshot",
            description=None,
            labels={},
            architecture="x86",
            disk_size=40,
        )
        return {
            "create": create_action.duration or 0,
            "start": start.duration or 0,
            "snapshot": snap.duration or 0,
            "server": server.id,
        }

    with Sandbox(time_scale=1.0) as sb:
        got = sb.call(boot_and_start)
        assert got["create"] == t.create_server
        assert got["start"] == t.create_server + t.boot
        assert got["snapshot"] == t.snapshot_seconds(t.system_image_used_gb)
        started = admin(
            sb,
            "POST",
            f"/servers/{int(got['server'])}/configure",
            json={"openclaw_version": "2026.3.1"},
        )
        assert started.status_code == 202
        assert started.json()["mode"] == "full_install"
        assert started.json()["duration_seconds"] == t.install_full
        assert started.json()["configuring"] is True and started.json()["gateway"] == "down"


def test_golden_image_leaves_only_the_configuration(fclient: hcloud.Client, fast: Sandbox) -> None:
    t = Timings()
    builder = running(fclient, "builder")
    built, took_full = _configure(fast, builder.id, install_only=True)
    assert built["mode"] == "full_install" and took_full >= t.install_full * FAST * 0.95
    assert built["configured"] is False and built["gateway"] == "down"  # no customer config
    assert built["disk_used_gb"] == pytest.approx(t.system_image_used_gb + t.packages_gb, 0.01)

    result = builder.create_image(description="golden 2026.3.1")
    result.action.wait_until_finished(max_retries=10_000)
    golden = fclient.images.get_by_id(result.image.id)
    assert golden.image_size == pytest.approx(2.01)  # 1.4 + 0.6 GB and the marker file

    agent = create(fclient, "agent", image=Image(id=golden.id)).server
    done, took_config = _configure(fast, agent.id, gateway_token="tok")
    assert done["mode"] == "config_only" and done["configured"] is True
    assert done["gateway"] == "serving"
    assert took_config < took_full / 3, (took_config, took_full)

    # A new runtime version on the golden image is a full install again.
    again, _ = _configure(fast, agent.id, openclaw_version="2026.4.0")
    assert again["mode"] == "full_install"
    # A plain system image has nothing installed.
    cold = running(fclient, "cold")
    assert _configure(fast, cold.id)[0]["mode"] == "full_install"


def test_a_reboot_interrupts_a_configuration_run(fclient: hcloud.Client, fast: Sandbox) -> None:
    server = running(fclient, "interrupted")
    started = admin(
        fast, "POST", f"/servers/{server.id}/configure", json={"openclaw_version": "2026.3.1"}
    )
    assert started.status_code == 202
    busy = admin(
        fast, "POST", f"/servers/{server.id}/configure", json={"openclaw_version": "2026.3.1"}
    )
    assert busy.status_code == 409 and "in progress" in busy.json()["error"]
    server.reset().wait_until_finished(max_retries=10_000)
    time.sleep(Timings().install_full * FAST * 1.2)
    view = fast.server(server.id)
    assert view["configured"] is False and view["configuring"] is False
    assert _configure(fast, server.id)[0]["configured"] is True


def test_a_disk_with_tailscale_skips_its_install_in_cloud_init_and_the_join() -> None:
    """Cloud-init and the tailnet join take the short rows on a disk that already has the
    tailscale package (a server from a golden image); the first install leaves the package."""
    from aura_sandbox.config import SandboxConfig
    from aura_sandbox.tailnet_model import TAILSCALE_BINARY, TailnetTimings

    t, tt = Timings(), TailnetTimings()
    world = World(SandboxConfig(time_scale=1.0))
    scheduled: list[tuple[float, Any]] = []
    world.schedule = lambda delay, callback: scheduled.append((delay, callback))  # type: ignore[method-assign,assignment,func-returns-value,return-value]
    user_data = "#cloud-config\nruncmd:\n- curl -fsSL https://tailscale.com/install.sh | sh\n"

    def boot(name: str, files: dict[str, bytes]) -> Any:
        server, _, _ = lifecycle.create_server(
            world, name=name, server_type="cx22", location="fsn1", image_id=161547269,
            labels={}, user_data=user_data, ssh_keys=[], firewalls=[], start_after_create=True,
        )  # fmt: skip
        server.disk.update(files)
        scheduled.clear()
        lifecycle.booted(world, server)
        return server

    cold = boot("cold", {})
    assert [d for d, _ in scheduled] == [t.cloud_init]
    scheduled[0][1]()  # cloud-init finishes: the package is on the disk now
    assert cold.cloud_init_done and TAILSCALE_BINARY in cold.disk

    boot("golden", {TAILSCALE_BINARY: b"tailscale"})
    assert [d for d, _ in scheduled] == [t.cloud_init_preinstalled]
    assert t.cloud_init_preinstalled < t.cloud_init / 3
    assert tt.join_preinstalled < tt.join / 2
