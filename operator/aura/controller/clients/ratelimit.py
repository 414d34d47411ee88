"""One rate limiter shared by every Hetzner call of the operator process.

Hetzner limits a project to a bucket of requests (3600, refilled one per second) and reports
it on every response as `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (the
Unix time the bucket is full again). The limiter:

- paces requests when the bucket runs low (below `reserve`), spreading what is left until
  the reset, so 200 agents polling cannot drain it and lock everyone out;
- on a 429 blocks *every* caller until the reset (or an exponential back-off when the reset
  is unknown), instead of each request discovering the limit on its own.

It is called from the worker threads the synchronous hcloud client runs in, hence the
threading lock and blocking sleep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from aura.controller import metrics


class RateLimiter:
    """Thread-safe pacing and global back-off driven by Hetzner's rate-limit headers."""

    def __init__(
        self,
        *,
        reserve: int = 50,
        max_backoff: float = 60.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._lock = threading.Lock()
        self._reserve = reserve
        self._max_backoff = max_backoff
        self._clock = clock
        self._sleep = sleep
        self._remaining: int | None = None
        self._limit: int | None = None
        self._reset_at: float | None = None
        self._blocked_until = 0.0
        self._next_slot = 0.0
        self._consecutive_429 = 0

    @property
    def remaining(self) -> int | None:
        return self._remaining

    def delay(self) -> float:
        """Seconds the next request must wait; reserves its slot when pacing."""
        with self._lock:
            now = self._clock()
            wait = max(0.0, self._blocked_until - now)
            if (
                self._remaining is not None
                and self._remaining < self._reserve
                and self._reset_at is not None
                and self._limit
            ):
                # Spread the rest of the window evenly over the tokens still missing.
                missing = max(1, self._limit - self._remaining)
                interval = max(0.0, self._reset_at - now) / missing
                slot = max(now, self._next_slot)
                self._next_slot = slot + interval
                wait = max(wait, slot - now)
            return wait

    def acquire(self) -> None:
        """Block until a request may be sent."""
        wait = self.delay()
        if wait > 0:
            metrics.RATE_LIMIT_WAIT_SECONDS.inc(wait)
            self._sleep(wait)

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        """Learn from one response's status and rate-limit headers."""
        with self._lock:
            now = self._clock()
            remaining = _int(headers.get("RateLimit-Remaining"))
            limit = _int(headers.get("RateLimit-Limit"))
            reset = _int(headers.get("RateLimit-Reset"))
            if remaining is not None:
                self._remaining = remaining
                metrics.RATE_LIMIT_REMAINING.set(remaining)
            if limit is not None:
                self._limit = limit
            if reset is not None:
                self._reset_at = float(reset)
            if status != 429:
                self._consecutive_429 = 0
                return
            self._consecutive_429 += 1
            backoff = min(self._max_backoff, 2.0 ** (self._consecutive_429 - 1))
            retry_after = _int(headers.get("Retry-After"))
            if retry_after is not None:
                backoff = min(self._max_backoff, max(backoff, float(retry_after)))
            elif reset is not None and remaining == 0:
                # A full reset can be an hour away; one token refills in about a second.
                backoff = min(self._max_backoff, max(backoff, 1.0))
            self._blocked_until = max(self._blocked_until, now + backoff)

    def backoff_remaining(self) -> float:
        """Seconds until the global 429 back-off ends (0 when not blocked)."""
        with self._lock:
            return max(0.0, self._blocked_until - self._clock())


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
