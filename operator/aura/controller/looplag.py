"""How late this operator's event loop runs: a probe timeout while it lags is not evidence.

A gateway probe that times out is read as a gateway that does not answer. When the operator
itself is saturated (a provisioning burst of 2,000 Agents on a small node), its own event loop
runs the probe's callbacks late and the probe times out whatever the gateway does; every such
Agent turned Degraded and was probed again at once, which loaded the loop further (the 2,000
Agent bench run collapsed this way). `LoopLag` samples how late a short sleep wakes up;
`reconcile/health.py` treats a timeout as inconclusive while the lag is over `LAG_LIMIT`.
"""

from __future__ import annotations

import asyncio
from collections import deque

PERIOD = 0.5
"""Seconds between samples."""
WINDOW = 10.0
"""The lag counts while its worst sample is this recent (seconds)."""
LAG_LIMIT = 1.0
"""Seconds of lag above which a probe's timeout says more about us than the gateway."""


class LoopLag:
    """The worst recent lateness of the event loop, from `run()`'s samples."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, float]] = deque()

    def record(self, now: float, lag: float) -> None:
        """One sample: at loop time `now` a sleep woke `lag` seconds late."""
        self._samples.append((now, lag))
        while self._samples and self._samples[0][0] < now - WINDOW:
            self._samples.popleft()

    def worst(self) -> float:
        """The largest lag of the last `WINDOW` seconds (0 before any sample)."""
        return max((lag for _, lag in self._samples), default=0.0)

    def lagging(self) -> bool:
        return self.worst() > LAG_LIMIT

    async def run(self) -> None:
        """Sample forever (a task of the operator; cancelled at shutdown)."""
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(PERIOD)
            now = loop.time()
            self.record(now, max(0.0, now - start - PERIOD))
