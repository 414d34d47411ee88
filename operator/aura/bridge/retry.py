"""`retrying(attempt, deadline)`: run `attempt` until it stops raising `Retryable` or the next
try would start after `deadline` seconds from now, then let the last `Retryable` escape (the
webhook answers 503 and Stripe redelivers). Backoff doubles from 20 ms up to 1 s, with jitter
so the writers that met one conflict do not meet again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aura.bridge.errors import Retryable

log = logging.getLogger(__name__)
T = TypeVar("T")
FIRST_DELAY = 0.02
MAX_DELAY = 1.0


async def retrying(attempt: Callable[[], Awaitable[T]], deadline: float) -> T:
    give_up = time.monotonic() + deadline
    delay = FIRST_DELAY
    while True:
        try:
            return await attempt()
        except Retryable as exc:
            if time.monotonic() + delay > give_up:
                raise
            log.info("retrying after %s", exc)
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, MAX_DELAY)
