"""Pure inputs of one Ansible run: the private files and the `ansible_runner.run()` arguments.

`RunInputs.prepare` writes the SSH key, the pinned known_hosts file and the secrets vars file
into the run's private directory (each 0600) and returns the keyword arguments for
`ansible_runner.run()`: a one-host inventory, the extra vars, the environment. Nothing here
starts a process, so the whole mapping from a `ConfigTarget` to a run can be tested without
Ansible.

Secrets go to exactly one place, the vars file passed with `-e @file`: `runtime_env` (the
target's environment without `TS_AUTHKEY`) and `network_tailscale_authkey`. The operator
itself enrols hosts in the tailnet through cloud-init and never puts `TS_AUTHKEY` into
`runtime_env`; a caller that re-enrols a host by hand can, and then the key reaches the
playbook's network role and is never written to the agent's `.env`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aura.configure.base import ConfigTarget

#: The key in `ConfigTarget.runtime_env` that carries a tailnet auth key (see the docstring).
TAILSCALE_AUTHKEY_ENV = "TS_AUTHKEY"

#: Environment variable that tags every process of one run (see hygiene.kill_run_processes).
RUN_MARKER_ENV = "AURA_ANSIBLE_RUN"

#: `ansible/` of the source tree this package was loaded from (operator/aura/configure/ ->
#: the repository root). An installed wheel has no such directory: set AURA_ANSIBLE_DIR.
DEFAULT_ANSIBLE_DIR = Path(__file__).resolve().parents[3] / "ansible"


def default_ansible_dir() -> Path:
    """`$AURA_ANSIBLE_DIR` if set, else the repository's `ansible/` directory."""
    configured = os.environ.get("AURA_ANSIBLE_DIR")
    return Path(configured) if configured else DEFAULT_ANSIBLE_DIR


@dataclass(frozen=True)
class RunInputs:
    """The configurator's settings that shape every run (see `AnsibleConfigurator`)."""

    ansible_dir: Path
    playbook: str
    ansible_playbook: str
    artifacts_dir: Path | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)

    def prepare(
        self, private: Path, control: Path, run_marker: str, target: ConfigTarget
    ) -> dict[str, Any]:
        """Write the run's private files; return the ansible_runner.run() keyword arguments.

        `private` is the run's own 0700 directory (deleted after the run), `control` the
        short directory for SSH control sockets, `run_marker` the value of `RUN_MARKER_ENV`
        that every process of the run inherits.
        """
        key = private / "id_ssh"
        write_private(key, target.ssh_private_key.rstrip("\n") + "\n")
        known_hosts = private / "known_hosts"
        write_private(known_hosts, known_hosts_line(target) + "\n")
        secret_vars = private / "secret-vars.json"
        env = dict(target.runtime_env)
        authkey = env.pop(TAILSCALE_AUTHKEY_ENV, "")
        write_private(
            secret_vars,
            json.dumps({"runtime_env": env, "network_tailscale_authkey": authkey}),
        )
        for sub in ("tmp", "home"):
            (private / sub).mkdir(mode=0o700)

        ssh_args = " ".join(
            [
                "-o StrictHostKeyChecking=yes",
                f"-o UserKnownHostsFile={known_hosts}",
                "-o GlobalKnownHostsFile=/dev/null",
                "-o UpdateHostKeys=no",
                "-o IdentitiesOnly=yes",
                "-o IdentityAgent=none",
                "-o BatchMode=yes",
                "-o PasswordAuthentication=no",
                "-o ConnectTimeout=30",
                "-o ServerAliveInterval=15",
                "-o ServerAliveCountMax=4",
            ]
        )
        alias = target.agent.replace("/", "-")
        inventory = {
            "aura_agents": {
                "hosts": {
                    alias: {
                        "ansible_host": target.host,
                        "ansible_port": target.port,
                        "ansible_user": target.user,
                        "ansible_ssh_private_key_file": str(key),
                        "ansible_ssh_common_args": ssh_args,
                        "ansible_host_key_checking": True,
                    }
                }
            }
        }
        extravars: dict[str, object] = {
            "runtime_gateway_port": target.gateway_port,
            "runtime_settings": dict(target.settings),
        }
        if target.openclaw_version:
            extravars["runtime_openclaw_version"] = target.openclaw_version
        extravars.update(target.extra_vars)
        # The secrets file is the only source of these; never let extra_vars shadow it.
        extravars.pop("runtime_env", None)
        extravars.pop("network_tailscale_authkey", None)

        envvars = {
            # Every process of the run inherits this marker, including ansible's workers,
            # which start their own sessions and so escape the runner's process-group kill.
            RUN_MARKER_ENV: run_marker,
            # ansible-runner turns host key checking off unless this is set explicitly.
            "ANSIBLE_HOST_KEY_CHECKING": "True",
            # One SSH connection per run, multiplexed: the firewall task closes public SSH
            # for new connections while this one stays established. Masters are stopped in
            # _stop_ssh_masters; ControlPersist bounds them if this process dies first.
            "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=60s",
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control),
            "ANSIBLE_LOCAL_TEMP": str(private / "tmp"),
            "ANSIBLE_HOME": str(private / "home"),
            # One SSH round trip per task instead of put + chmod + run + remove.
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_DISPLAY_ARGS_TO_STDOUT": "False",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
        }
        config = self.ansible_dir / "ansible.cfg"
        if config.is_file():
            envvars["ANSIBLE_CONFIG"] = str(config)
        # ansible-runner runs `ansible-playbook` from PATH; put the chosen one first.
        bin_dir = str(Path(self.ansible_playbook).parent)
        envvars["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", os.defpath)])
        envvars.update(self.extra_env)

        run_id = f"{alias}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        artifacts = self.artifacts_dir if self.artifacts_dir is not None else private / "artifacts"
        artifacts.mkdir(mode=0o700, parents=True, exist_ok=True)
        return {
            "private_data_dir": str(private),
            "project_dir": str(self.ansible_dir),
            "playbook": self.playbook,
            "inventory": inventory,
            "extravars": extravars,
            "envvars": envvars,
            "cmdline": f"-e @{secret_vars}",
            "artifact_dir": str(artifacts),
            "ident": run_id,
            "rotate_artifacts": 0,
            "quiet": True,
            # How often the runner checks the cancel flag (default 5 s).
            "settings": {"pexpect_timeout": 0.5},
        }


def short_tmp() -> str | None:
    """The system temp dir if a control socket path (dir + 50 bytes) fits in it, else /tmp."""
    return None if len(tempfile.gettempdir()) <= 40 else "/tmp"


def find_ansible_playbook() -> str:
    # Same environment as ansible_runner first: a virtualenv is often not on PATH.
    sibling = Path(sys.executable).parent / "ansible-playbook"
    if sibling.is_file():
        return str(sibling)
    return shutil.which("ansible-playbook") or str(sibling)


def known_hosts_line(target: ConfigTarget) -> str:
    key_type, key = target.ssh_host_public_key.split()[:2]
    host = target.host if target.port == 22 else f"[{target.host}]:{target.port}"
    return f"{host} {key_type} {key}"


def write_private(path: Path, content: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(content)
