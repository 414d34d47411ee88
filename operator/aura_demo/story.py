"""What the demo tells: timestamped lines as it goes, and the closing STEP table."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import click

from aura.status_cli import render_table


@dataclass
class StepResult:
    """One step of the plan: what was expected of which Agent and what was seen."""

    name: str
    agent: str
    expected: str
    observed: str = "-"
    seconds: float = 0.0
    ok: bool = False
    path: list[str] = field(default_factory=list)
    """Every phase the Agent went through during the step, in order."""


@dataclass
class Story:
    """The demo's output: `say` prints with the seconds since the start."""

    started: float = field(default_factory=time.monotonic)
    steps: list[StepResult] = field(default_factory=list)

    def say(self, text: str) -> None:
        click.echo(f"[{time.monotonic() - self.started:6.1f}s] {text}")

    def summary(self) -> str:
        rows = []
        for s in self.steps:
            took, result = f"{s.seconds:.1f}s", "ok" if s.ok else "FAILED"
            rows.append([s.name, s.agent, s.expected, s.observed, took, result])
        return render_table(["STEP", "AGENT", "EXPECTED", "OBSERVED", "TOOK", "RESULT"], rows)
