"""Figures: time from a gateway failing to each rung of the repair ladder, at the defaults.

    .venv/bin/python hack/bench/heal_ladder.py [--trials 200]

Runs the real reconcile (health step, repair ladder) against the unit-test fakes with the
injected clock, the way the health timer does: one pass every `--health-interval` (default
30 s). Each trial wedges the gateway at a random moment between two timer passes, keeps it
wedged, and records when the restart, the reboot and the replacement act. Prints min, median
and max seconds per rung, for two cases: a wedged gateway (every rung acts), and an
unreachable host (the restart cannot connect and fails, so the reboot follows on the next
pass). Timer jitter and the probe's own duration (up to --health-timeout) come on top in a
real cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.unit.test_controller_reconcile import World  # noqa: E402
from tests.unit.test_controller_repair import FakeGatewayService  # noqa: E402

from aura.controller import errors  # noqa: E402
from aura.controller.settings import OperatorConfig  # noqa: E402


async def trial(rng: random.Random, *, unreachable: bool = False) -> dict[str, float]:
    w = World()
    service = FakeGatewayService(w)
    w.op.gateway_service = service
    await w.converge()
    if unreachable:
        service.fail = errors.Retryable("ssh: connect to host: no route to host")
    interval = OperatorConfig().health_interval
    w.wedged = True
    first_pass = rng.uniform(0, interval)  # the failure lands between two timer passes
    w.clock.advance(first_pass)
    elapsed = first_pass  # seconds since the failure, at each timer pass
    acted: dict[str, float] = {}
    seen = 0
    for _ in range(200):
        await w.one_pass()
        records = w.status.healing.repairs if w.status.healing else []
        for record in records[seen:]:
            acted[record.rung.value] = elapsed
        seen = len(records)
        if "replace" in acted:
            break
        w.clock.advance(interval)
        elapsed += interval
    return acted


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=200)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the reconcile's Event log lines, once per trial
    rng = random.Random(1)
    config = OperatorConfig()
    print(
        f"defaults: health interval {config.health_interval:.0f}s, T1 "
        f"{config.heal_restart_after:.0f}s, T2 {config.heal_reboot_after:.0f}s, T3 "
        f"{config.heal_replace_after:.0f}s; {args.trials} trials each"
    )
    for case, unreachable in (("wedged gateway", False), ("unreachable host", True)):
        runs = [asyncio.run(trial(rng, unreachable=unreachable)) for _ in range(args.trials)]
        print(f"{case}:")
        for rung in ("restart", "reboot", "replace"):
            times = [r[rung] for r in runs if rung in r]
            print(
                f"  gateway failure -> {rung:8s} min {min(times):5.0f}s  median "
                f"{statistics.median(times):5.0f}s  max {max(times):5.0f}s"
            )


if __name__ == "__main__":
    main()
