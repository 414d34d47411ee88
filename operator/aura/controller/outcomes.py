"""The values a reconcile pass (and each of its steps) returns: `Done` or `Wait`.

Shared vocabulary of every layer: steps return them, the driver hands them to
`errors.to_kopf`, which maps every outcome (a `Wait` or a classified error) to kopf.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Done:
    """The step's part of the world is as desired; go on."""


@dataclass(frozen=True)
class Wait:
    """Not there yet (booting, joining, ...); come back after `delay` seconds.

    `delay=None` waits for a change instead of a time: the pass ends without a retry and the
    next event about the Agent (a spec change, the Secret it waits for) starts the next one.
    """

    delay: float | None
    reason: str


StepResult = Done | Wait
DONE = Done()
