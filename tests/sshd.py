"""A throwaway OpenSSH server on 127.0.0.1, for tests that need a real SSH target.

`start_sshd(workdir)` generates a host key and a client key in `workdir`, writes its own
`sshd_config` (loopback only, keys only, `UsePAM no`, `StrictModes no`) and runs
`sshd -D -e -f <config>` on a free port. It logs in the user running the tests (root may log
in with a key: `PermitRootLogin prohibit-password`). `Sshd.target(...)` builds the
`ConfigTarget` for it, with the pinned host key, so a test can hand it straight to a
configurator. Always `stop_sshd()` it (the `sshd` fixture in tests/conftest.py does).

The same helper also runs sshd *inside* a root filesystem: pass `chroot_cmd`, a command prefix
that enters it (tests/ansible/target.py uses a private mount namespace + chroot). Paths in the
generated config are then relative to that root.

Usable from any test package:

    from tests.sshd import start_sshd, stop_sshd
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aura.configure.base import ConfigTarget

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


@dataclass
class Sshd:
    """A running throwaway sshd and the keys to reach it."""

    host: str
    port: int
    user: str
    client_private_key: str = field(repr=False)
    host_public_key: str  # "ssh-ed25519 AAAA..." as a ConfigTarget pins it
    workdir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    # The target's Python for Ansible modules: the system one, not a pyenv shim or venv that
    # only works in the test runner's own environment.
    python: str = "/usr/bin/python3"

    def target(self, agent: str = "test/agent", **overrides: object) -> ConfigTarget:
        """A ConfigTarget that reaches this sshd with the pinned host key.

        `overrides` replace ConfigTarget fields; `extra_vars` is merged over
        `{"ansible_python_interpreter": self.python}`.
        """
        extra_vars: dict[str, object] = {"ansible_python_interpreter": self.python}
        extra_vars.update(overrides.pop("extra_vars", None) or {})  # type: ignore[call-overload]
        values: dict[str, object] = {
            "agent": agent,
            "server_id": 1,
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "ssh_private_key": self.client_private_key,
            "ssh_host_public_key": self.host_public_key,
            "openclaw_version": "2026.3.1",
            "extra_vars": extra_vars,
        }
        values.update(overrides)
        return ConfigTarget(**values)  # type: ignore[arg-type]

    def ssh(self, command: str, *, check: bool = True, timeout: float = 60) -> str:
        """Run `command` on the server over SSH (host key checked); returns its stdout."""
        keyfile = self.workdir / "client-key-for-ssh"
        if not keyfile.exists():
            keyfile.write_text(self.client_private_key)
            keyfile.chmod(0o600)
        known = self.workdir / "known_hosts-for-ssh"
        known.write_text(f"[{self.host}]:{self.port} {self.host_public_key}\n")
        proc = subprocess.run(
            [
                "ssh", "-p", str(self.port), "-i", str(keyfile),
                "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known}",
                f"{self.user}@{self.host}", command,
            ],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if check and proc.returncode != 0:
            raise RuntimeError(f"ssh {command!r} exited {proc.returncode}: {proc.stderr}")
        return proc.stdout

    def log(self) -> str:
        """What sshd wrote to stderr so far (for assertion messages)."""
        return self.log_path.read_text(errors="replace")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def keygen(path: Path, comment: str) -> tuple[str, str]:
    """Generate an ed25519 keypair at `path`; returns (private key, public key line)."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
    )
    path.chmod(0o600)
    return path.read_text(), path.with_suffix(".pub").read_text().strip()


def write_config(
    confdir: Path, *, port: int, root_prefix: str = "", login_user: str | None = None
) -> tuple[str, str]:
    """Write host key, client key, authorized_keys and sshd_config into `confdir`.

    `root_prefix` is how sshd will see `confdir` (differs when sshd runs in a chroot).
    Returns (client private key, host public key "type base64").
    """
    confdir.mkdir(parents=True, exist_ok=True)
    confdir.chmod(0o700)
    _, host_pub = keygen(confdir / "host_ed25519", "aura-test-host")
    client_priv, client_pub = keygen(confdir / "client_ed25519", "aura-test-client")
    (confdir / "authorized_keys").write_text(client_pub + "\n")
    seen = root_prefix or str(confdir)
    allow = f"AllowUsers {login_user}\n" if login_user else ""
    (confdir / "sshd_config").write_text(
        f"""# Throwaway sshd for tests (tests/sshd.py).
Port {port}
ListenAddress 127.0.0.1
HostKey {seen}/host_ed25519
AuthorizedKeysFile {seen}/authorized_keys
PidFile none
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
{allow}MaxStartups 50:30:100
MaxSessions 50
LogLevel VERBOSE
Subsystem sftp internal-sftp
"""
    )
    return client_priv, " ".join(host_pub.split()[:2])


def start_sshd(
    workdir: Path,
    *,
    user: str | None = None,
    chroot_cmd: Sequence[str] = (),
    confdir: Path | None = None,
    root_prefix: str = "",
    timeout: float = 15.0,
) -> Sshd:
    """Start sshd on a free loopback port; returns once it answers with an SSH banner.

    Without `chroot_cmd` everything lives in `workdir`. With it, `confdir` is where the config
    goes on this machine and `root_prefix` is the same directory as sshd sees it.
    """
    user = user or getpass.getuser()
    port = free_port()
    confdir = confdir or workdir / "sshd"
    client_priv, host_pub = write_config(
        confdir, port=port, root_prefix=root_prefix, login_user=user
    )
    # sshd refuses to start without its privilege separation directory.
    if not chroot_cmd:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    seen = root_prefix or str(confdir)
    log_path = workdir / f"sshd-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*chroot_cmd, SSHD, "-D", "-e", "-f", f"{seen}/sshd_config"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    sshd = Sshd(
        host="127.0.0.1",
        port=port,
        user=user,
        client_private_key=client_priv,
        host_public_key=host_pub,
        workdir=workdir,
        process=proc,
        log_path=log_path,
    )
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}: {sshd.log()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(64).startswith(b"SSH-"):
                    return sshd
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_sshd(sshd)
            raise RuntimeError(f"sshd did not answer on port {port}: {sshd.log()}")
        time.sleep(0.05)


def descendants(pid: int) -> list[int]:
    """Process ids of every live descendant of `pid` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may contain spaces; fields after it are plain.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop_sshd(sshd: Sshd) -> None:
    """Stop sshd and every session process it started (sessions leave its process group)."""
    for pid in descendants(sshd.process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    if sshd.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(sshd.process.pid, 15)
        try:
            sshd.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(sshd.process.pid, 9)
            sshd.process.wait(timeout=10)
