"""Hetzner's per-project token bucket: `capacity` requests, refilled at `refill` per second.

The bucket runs on real time (not `time_scale`) because clients back off in real time. The
headers follow hetzner.md 2.10: `RateLimit-Reset` is the UNIX time of full recovery.
"""

from __future__ import annotations

import math
import time


class TokenBucket:
    def __init__(self, capacity: int, refill_per_second: float) -> None:
        self.capacity = capacity
        self.refill = refill_per_second
        self._tokens = float(capacity)
        self._stamp = time.monotonic()
        self.refused = 0
        """Requests answered 429 since start (benchmarks read it from `/admin/world`)."""

    def reconfigure(self, capacity: int | None = None, refill: float | None = None) -> None:
        """Change the limits and start full again (admin API and tests)."""
        if capacity is not None:
            self.capacity = capacity
        if refill is not None:
            self.refill = refill
        self._tokens = float(self.capacity)
        self._stamp = time.monotonic()

    def _update(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.refill)
        self._stamp = now

    def take(self) -> bool:
        """Use one token; False (and nothing used) when the bucket is empty."""
        self._update()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        self.refused += 1
        return False

    @property
    def remaining(self) -> int:
        return int(self._tokens)

    def headers(self) -> dict[str, str]:
        missing = self.capacity - self._tokens
        reset = time.time() + (missing / self.refill if self.refill > 0 else 0)
        return {
            "RateLimit-Limit": str(self.capacity),
            "RateLimit-Remaining": str(int(self._tokens)),
            "RateLimit-Reset": str(math.ceil(reset)),
        }
