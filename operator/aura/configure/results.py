"""Folding ansible-runner's events into a `ConfigResult` whose words are safe to show.

`RunRecord` is what the runner thread collects while the playbook runs (`collect` is the
event handler's body); `result_of` turns it into the `ConfigResult` of the contract: the first
failing task and its module's message, an unreachable host explained (a host key mismatch
named as such), every secret value of the target replaced by `***`, the text truncated.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aura.configure.base import ConfigResult, ConfigTarget, ConfigurationTimeout

MESSAGE_LIMIT = 1000
# ssh's own words when the host presents a key other than the pinned one.
_FINGERPRINT = re.compile(r"fingerprint for the (\S+) key sent by the remote host is\s+(\S+?)\.?\s")
_REDACTED = "***"


class RunRecord:
    """What one run collects from ansible-runner's events (written by the runner thread)."""

    failed_task: str | None = None
    failed_message: str = ""
    unreachable: bool = False
    changed: int = 0
    status: str = "unstarted"
    rc: int | None = None
    output_tail: str = ""
    error: str = ""


def collect(run: RunRecord, event: Mapping[str, Any]) -> None:
    """Fold one ansible-runner event into `run`."""
    name = event.get("event")
    data = event.get("event_data") or {}
    if name in ("runner_on_failed", "runner_on_unreachable"):
        if data.get("ignore_errors"):
            return
        if run.failed_task is None:
            run.failed_task = str(data.get("task") or "")
            run.failed_message = module_message(data.get("res") or {})
            run.unreachable = name == "runner_on_unreachable"
    elif name == "playbook_on_stats":
        changed = data.get("changed") or {}
        run.changed = sum(int(v) for v in changed.values())


def module_message(res: Mapping[str, Any]) -> str:
    """The human part of a failed module result: msg, plus stderr for commands."""
    parts = [str(res.get("msg") or "").strip()]
    # Tools put the reason on an "Error" line, often followed by context and ^^^ markers.
    lines = [line.strip() for line in str(res.get("stderr") or "").splitlines()]
    lines = [line for line in lines if line.strip("^~ ")]
    if lines:
        errors = [line for line in lines if "error" in line.lower()]
        parts.append((errors or lines)[-1 if not errors else 0])
    return ": ".join(p for p in parts if p)


def result_of(
    run: RunRecord, target: ConfigTarget, secrets: Iterable[str], took: float
) -> ConfigResult:
    if run.status == "successful":
        return ConfigResult(ok=True, changed=run.changed, duration_seconds=took)
    if run.status == "timeout":  # only if a job_timeout sneaks in through ansible.cfg
        raise ConfigurationTimeout(f"configuring {target.agent} timed out; the run was stopped")
    if run.failed_task is not None:
        message = run.failed_message or "the task failed without a message"
        if run.unreachable:
            message = unreachable_message(target, message)
    elif run.error:
        message = f"ansible-runner could not run the playbook: {run.error}"
    else:
        message = f"ansible-playbook exited with {run.rc} ({run.status}): {run.output_tail}"
    return ConfigResult(
        ok=False,
        failed_task=run.failed_task,
        message=truncate(redact(message, secrets)),
        changed=run.changed,
        duration_seconds=took,
    )


def unreachable_message(target: ConfigTarget, message: str) -> str:
    where = f"{target.host}:{target.port}"
    if "Host key verification failed" in message or "IDENTIFICATION HAS CHANGED" in message:
        seen = _FINGERPRINT.search(message)
        presented = f" (it presented {seen.group(1)} key {seen.group(2)})" if seen else ""
        return (
            f"SSH host key of {where} does not match the pinned host key of server "
            f"{target.server_id}{presented}; refusing to connect"
        )
    return f"cannot reach {where} over SSH: {message}"


def secret_values(target: ConfigTarget) -> list[str]:
    values = [v for v in target.runtime_env.values() if len(v) >= 4]
    if target.ssh_private_key.strip():
        values.append(target.ssh_private_key.strip())
    # Longest first, so a secret that contains another is replaced whole.
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    for value in secrets:
        text = text.replace(value, _REDACTED)
    return text


def truncate(text: str, limit: int = MESSAGE_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
