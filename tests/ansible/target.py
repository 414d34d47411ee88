"""A disposable Debian server to converge the real playbook against, without a VM.

`start_rootfs_target()` takes the cached bookworm root filesystem from
hack/build-rootfs.sh and runs a throwaway sshd *inside* it:

    unshare --mount --propagation private          # mounts below vanish with the last process
      mount -t overlay  lower=<cache> upper=<tmp>  # the cache is never written
      mount proc, rbind /dev
      chroot <merged> sshd -D -f /etc/aura-test-sshd/sshd_config   # 127.0.0.1:<free port>

The playbook then runs over real SSH, exactly as in production. Everything it writes lands in
`RootfsTarget.upper`. The chroot shares this machine's kernel and network stack, so the
test variables (TEST_VARS) switch off what would touch the host or cannot work without
systemd as PID 1; ansible/README.md lists them and how each is covered instead.

Stand-ins placed in the overlay before sshd starts:
- /usr/bin/cloud-init: `status --wait` prints "status: done" and exits 2 (done with
  recoverable errors), which the playbook must accept;
- /usr/bin/tailscale: a logged-out CLI until `tailscale up --auth-key=...`, which it records;
- /root/openclaw-<version>.tgz: the npm package of tests/ansible/fake-openclaw.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.sshd import Sshd, start_sshd, stop_sshd

REPO = Path(__file__).resolve().parents[2]
BUILD_ROOTFS = REPO / "hack" / "build-rootfs.sh"
FAKE_OPENCLAW = Path(__file__).parent / "fake-openclaw"
OPENCLAW_VERSION = "2026.3.1"

#: Playbook variables for the chroot target (documented in ansible/README.md).
TEST_VARS: dict[str, object] = {
    "aura_systemd_running": False,
    "runtime_nodejs_repo_enabled": False,
    "runtime_nodejs_packages": ["nodejs", "npm"],
    "runtime_nodejs_min_major": 18,
    "runtime_openclaw_package": f"/root/openclaw-{OPENCLAW_VERSION}.tgz",
    "network_tailscale_install": False,
    "network_firewall_apply": False,
    "base_connection_timeout": 30,
    "ansible_python_interpreter": "/usr/bin/python3",
}

CLOUD_INIT_STUB = """#!/bin/sh
# Stand-in for cloud-init (tests/ansible/target.py): first boot finished, degraded.
echo "$*" >> /var/lib/aura-test/cloud-init.calls
[ "$1 $2" = "status --wait" ] || { echo "unsupported: $*" >&2; exit 64; }
echo "status: done"
exit 2
"""

TAILSCALE_STUB = """#!/bin/sh
# Stand-in for the tailscale CLI (tests/ansible/target.py): tailscaled cannot run here.
state=/var/lib/aura-test
case "$1" in
  status)
    if [ -f "$state/tailscale.joined" ]; then echo '{"BackendState": "Running"}'
    else echo '{"BackendState": "NeedsLogin"}'; exit 1; fi ;;
  up)
    shift
    case "$*" in *--auth-key=?*) ;; *) echo "no auth key" >&2; exit 1 ;; esac
    printf '%s\\n' "$*" >> "$state/tailscale.up-calls"
    touch "$state/tailscale.joined" ;;
  *) echo "unsupported: $*" >&2; exit 64 ;;
esac
"""


@dataclass
class RootfsTarget:
    """A running chroot target: its sshd and the overlay's upper directory."""

    sshd: Sshd
    upper: Path

    def file(self, path: str) -> Path:
        """Where the file the playbook wrote at `path` (on the target) is on this machine."""
        return self.upper / path.lstrip("/")


def rootfs_dir() -> Path:
    """Build the cached root filesystem if needed (a no-op when current); return its path."""
    started = time.monotonic()
    subprocess.run([str(BUILD_ROOTFS)], check=True, timeout=1200)
    took = time.monotonic() - started
    if took > 5:
        print(f"hack/build-rootfs.sh took {took:.0f}s")  # visible with -s; the cold-cache cost
    out = subprocess.run(
        [str(BUILD_ROOTFS), "--print-dir"], check=True, capture_output=True, text=True
    )
    return Path(out.stdout.strip())


def npm_tarball(version: str) -> bytes:
    """The fake openclaw package as `npm pack` would make it (files under `package/`)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for src in sorted(FAKE_OPENCLAW.rglob("*")):
            if not src.is_file():
                continue
            data = src.read_bytes()
            if src.name == "package.json":
                manifest = json.loads(data)
                manifest["version"] = version
                data = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo(f"package/{src.relative_to(FAKE_OPENCLAW)}")
            info.size = len(data)
            info.mode = 0o755 if os.access(src, os.X_OK) else 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _put(upper: Path, path: str, content: str | bytes, mode: int) -> None:
    dest = upper / path.lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode()
    dest.write_bytes(content)
    dest.chmod(mode)


def start_rootfs_target(workdir: Path, rootfs: Path) -> RootfsTarget:
    """Start sshd in a private overlay of `rootfs`; see the module docstring."""
    upper, work, merged = workdir / "upper", workdir / "work", workdir / "merged"
    for d in (upper, work, merged):
        d.mkdir(parents=True)
    # Directories created in the upper layer shadow the lower ones' metadata: match it.
    for name, mode in (("etc", 0o755), ("usr", 0o755), ("usr/bin", 0o755), ("run", 0o755),
                    ("run/sshd", 0o755), ("root", 0o700), ("var", 0o755), ("var/lib", 0o755),
                    ("var/lib/aura-test", 0o755)):  # fmt: skip
        (upper / name).mkdir(exist_ok=True)
        (upper / name).chmod(mode)
    _put(upper, "/usr/bin/cloud-init", CLOUD_INIT_STUB, 0o755)
    _put(upper, "/usr/bin/tailscale", TAILSCALE_STUB, 0o755)
    _put(upper, f"/root/openclaw-{OPENCLAW_VERSION}.tgz", npm_tarball(OPENCLAW_VERSION), 0o644)
    enter = (
        "set -e\n"
        f"mount -t overlay overlay -o lowerdir={rootfs},upperdir={upper},workdir={work} {merged}\n"
        f"mount -t proc proc {merged}/proc\n"
        f"mount --rbind /dev {merged}/dev\n"
        f'exec chroot {merged} "$@"\n'
    )
    sshd = start_sshd(
        workdir,
        user="root",
        chroot_cmd=["unshare", "--mount", "--propagation", "private", "sh", "-c", enter, "sh"],
        confdir=upper / "etc" / "aura-test-sshd",
        root_prefix="/etc/aura-test-sshd",
        timeout=30,
    )
    return RootfsTarget(sshd=sshd, upper=upper)


def stop_rootfs_target(target: RootfsTarget) -> None:
    """Stop sshd and its sessions; the mount namespace, and with it the overlay, goes away."""
    stop_sshd(target.sshd)
    # Only now is the overlay unmounted; removing the upper layer cannot reach the cache.
    shutil.rmtree(target.upper.parent, ignore_errors=True)
