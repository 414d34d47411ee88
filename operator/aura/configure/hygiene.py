"""Process and file hygiene after an Ansible run: nothing a run started or wrote outlives it.

A run leaves three kinds of residue that ansible-runner does not clean: SSH connection masters
(they daemonize by design), ansible worker processes in sessions of their own (they escape the
runner's process-group kill), and, when artifacts are kept, the environment ansible-runner
records beside the command line (it holds the operator's own environment and its tokens).
`clean_up` removes all three and the run's private directories.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from aura.configure.inputs import RUN_MARKER_ENV


def clean_up(private: Path, control: Path, run_marker: str, artifacts: Path | None) -> None:
    """Stop everything a run left behind and delete its private files."""
    stop_ssh_masters(control)
    kill_run_processes(run_marker)
    if artifacts is not None:
        scrub_artifacts(artifacts)
    shutil.rmtree(private, ignore_errors=True)
    shutil.rmtree(control, ignore_errors=True)


def stop_ssh_masters(control_dir: Path) -> None:
    """Stop the SSH connection masters of a run (they outlive ansible-playbook by design)."""
    if not control_dir.is_dir():
        return
    for sock in control_dir.iterdir():
        subprocess.run(
            ["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "aura-control-master"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
            check=False,
        )


def kill_run_processes(run_marker: str) -> None:
    """SIGKILL every process left over from a run, found by its environment marker.

    ansible-runner kills ansible-playbook's process group on cancel or timeout, but ansible's
    worker processes run in sessions of their own (and SSH masters daemonize), so they would
    keep running the current task. Linux only (/proc); a no-op where it is missing.
    """
    needle = f"{RUN_MARKER_ENV}={run_marker}".encode() + b"\0"
    for _ in range(5):  # a dying parent may still fork; look again until none is left
        found = False
        for entry in Path("/proc").glob("[0-9]*"):
            try:
                if needle not in (entry / "environ").read_bytes():
                    continue
                os.kill(int(entry.name), signal.SIGKILL)
                found = True
            except (OSError, ValueError):  # gone already, or not ours to read
                continue
        if not found:
            return
        time.sleep(0.05)


def scrub_artifacts(artifacts_dir: Path) -> None:
    """Drop the environment ansible-runner records next to the command line it ran."""
    for command in artifacts_dir.glob("*/command"):
        try:
            data = json.loads(command.read_text())
            data.pop("env", None)
            command.write_text(json.dumps(data))
        except (OSError, ValueError):
            command.unlink(missing_ok=True)
