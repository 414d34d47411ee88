"""The sandbox's timing model: every simulated duration, in one table, with its source.

All figures are *realistic* seconds (or gigabytes): at `--time-scale 1` the sandbox takes them
as they are, and the world multiplies each by `time_scale` when it schedules it. Where no
public measurement exists the figure is an estimate and says so; change it here and nowhere
else. `config.Timings` is this table (re-exported there for the modules that already use it).

Disk sizes feed the durations that depend on data: a snapshot copies the used data, so its
time grows with `used_gb`, and so does restoring one (create or rebuild from a snapshot).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Timings:
    """Realistic durations (seconds) and sizes (GB); see the module docstring."""

    # Hetzner API actions -----------------------------------------------------------------
    create_server: float = 5.0
    """`create_server` action: the `hcloud server create` progress bar finished in 4.7 s
    (syself/cluster-api-provider-hetzner#1223, hetzner.md section 6)."""
    boot: float = 55.0
    """`starting` to `running`, on create and on poweron. With `create_server` this gives
    60 s from the API call to a running server: Ansible's hcloud module says "60 to 90 seconds
    on average" (ansible-collections/hetzner.hcloud plugins/modules/server.py, PR #488)."""
    shutdown_action: float = 0.7
    """`shutdown_server` only sends the ACPI signal; a real one completed in 700 ms (#1223)."""
    shutdown_power_down: float = 15.0
    """From the ACPI signal to `off`: 10-30 s (jonamat/hetzner-rescaler#3)."""
    poweroff: float = 3.0
    """Hard power cut. Estimate: no public figure; far shorter than an ACPI shutdown."""
    reboot: float = 45.0
    """ACPI reboot until the OS is back. Estimate: a boot (above) minus the hypervisor's
    allocation, which a reboot skips."""
    reset: float = 40.0
    """Hard reset: as `reboot` without the orderly shutdown. Estimate."""
    delete_server: float = 2.0
    """The `delete_server` action; the DELETE call itself answers in ~60 ms
    (jenkinsci/hetzner-cloud-plugin#109). Estimate for the action."""
    firewall_apply: float = 1.0
    """`apply_firewall`. Estimate: packer-plugin-hcloud#205 shows it briefly locks a server."""

    # Snapshots -----------------------------------------------------------------------------
    snapshot_base: float = 46.0
    snapshot_per_gb: float = 10.0
    """`create_image` takes `snapshot_base + snapshot_per_gb * used GB`. Fitted to "depending
    on the disk size, this typically takes 1-5 minutes" (hetsnap.com docs): 1.4 GB used (a
    fresh system) is 60 s, 25 GB is just under 5 min. No per-GB figure was published anywhere
    (hetzner.md section 6), so the slope is an estimate within that range."""
    restore_base: float = 10.0
    restore_per_gb: float = 3.0
    """Creating or rebuilding a server from a snapshot adds `restore_base + restore_per_gb *
    image_size` to the `create_server` (or `rebuild_server`) action. With the boot above a
    3 GB snapshot runs after 79 s and a 25 GB one after 145 s; Terraform measured 1m09s to
    2m11s from a snapshot (hetznercloud/terraform-provider-hcloud#966)."""
    rebuild_system: float = 15.0
    """`rebuild_server` from a system image before the boot. Estimate (system images are
    "rapid deploy", pre-staged on the hosts)."""

    # Inside the server ---------------------------------------------------------------------
    cloud_init: float = 90.0
    """First `running` to cloud-init `done`, with the Tailscale install (apt repository,
    package, `tailscale up`). Estimate: the reference has only "5-10 min" for an apt-heavy
    setup (atvirokodosprendimai/wgmesh PR #297); Tailscale's one package is far lighter."""
    cloud_init_preinstalled: float = 20.0
    """The same on a disk that already has Tailscale (a server created from a golden image or
    a pooled one): the time sync wait and `tailscale up`; the install script finds the package
    and returns. Estimate, bounded below by the login round-trip."""
    install_full: float = 300.0
    """The playbook on a host without the packages: apt, Node.js, `npm install -g openclaw`,
    the systemd unit, then the configuration. Estimate: apt alone can hold the dpkg lock for
    "up to 5 minutes" after first boot (openclaw.md 4.1, GitLab environment toolkit MR !73)."""
    install_config_only: float = 25.0
    """The same playbook on a host that already has the packages (a golden image): facts,
    templates, a service restart. Estimate, bounded below by a measurement: the real playbook's
    no-op run (changed=0) against the test host took 18 s (tests/ansible/
    test_playbook_converge.py, Debian bookworm over SSH, 2026-12-03; its first run on that
    cached root filesystem took 54 s). A run that changes the token adds the template writes
    and the gateway restart."""
    config_push: float = 6.0
    """The handover play (`ansible/gateway-service.yml` with `aura_gateway_config`, a warm
    server given to a customer) until the gateway restart (next row): check the installed
    version, write openclaw.json and the `.env` with the customer's token. Measured against
    the test host of tests/ansible after a full site.yml run (2026-12-03): 6.0-6.1 s with a
    new token, 5.7 s unchanged, including ansible-playbook's start-up and the SSH connection.
    An upper figure: the machine was loaded (load average 5-8; the no-op site.yml took 38 s
    there, 18 s when quieter)."""
    gateway_restart: float = 5.0
    """`systemctl restart` of the gateway until `/readyz` answers. Estimate."""
    heartbeat_interval: float = 30.0
    """How often a serving gateway writes its heartbeat file. A model choice, not a figure."""

    # Disk contents (GB) ----------------------------------------------------------------
    system_image_used_gb: float = 1.4
    """Used data on a fresh server from a system image. Estimate for Ubuntu 24.04 (Hetzner's
    system images declare a 5 GB `disk_size`)."""
    packages_gb: float = 0.6
    """What the full install adds: Node.js, OpenClaw and its modules. Estimate."""

    def snapshot_seconds(self, used_gb: float) -> float:
        return self.snapshot_base + self.snapshot_per_gb * used_gb

    def restore_seconds(self, used_gb: float) -> float:
        return self.restore_base + self.restore_per_gb * used_gb

    def cloud_init_seconds(self, *, tailscale_installed: bool) -> float:
        return self.cloud_init_preinstalled if tailscale_installed else self.cloud_init

    def configure_seconds(self, *, packages_installed: bool) -> float:
        return self.install_config_only if packages_installed else self.install_full
