"""The shared budgets every cloud call of the operator process draws from.

`RateLimiter` (Hetzner). A project has one token bucket (3,600 requests, refilled one per
second, or what the headers say) shared with everything else the team runs against the same
project. Every response reports it as `RateLimit-Limit`, `RateLimit-Remaining` and
`RateLimit-Reset` (the Unix time the bucket is full again). The limiter keeps a local model of
that bucket, re-anchored on every answer:

- tokens = the last `Remaining`, minus our requests still in flight, plus the refill since;
  the refill rate is learned from the headers (`(Limit - Remaining) / (Reset - now)`);
- a request is sent only while the model holds a token *above the reserve*
  (`--rate-limit-reserve`, a share of the bucket, default 10%) left for the project's other
  users; otherwise it waits exactly until the refill brings one, so a burst drains the bucket
  down to the reserve and then runs at the refill rate, never into a 429;
- callers are served first come, first served (a ticket queue): a request that waited is never
  overtaken by a newer one;
- on a 429 anyway (another user drained the bucket) *every* caller stops until `Retry-After`,
  or an exponential back-off capped at `max_backoff`.

It is called from the worker threads the synchronous hcloud client runs in, hence the threading
condition and blocking sleep. `AsyncPacer` is the same idea for the Tailscale API, whose limits
are not published: a fixed client-side rate, FIFO, and a global stop on 429.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aura.controller import metrics

DEFAULT_LIMIT = 3600
DEFAULT_REFILL = 1.0  # tokens per second


@dataclass(frozen=True)
class Budget:
    """What the limiter believes about the project's bucket right now."""

    limit: int
    reserve: int
    available: float
    """Tokens above the reserve (negative: below it)."""
    refill: float
    """Tokens per second."""
    queued: int
    """Requests waiting for a token."""

    def seconds_for(self, calls: float) -> float:
        """Seconds until `calls` more requests (behind those queued) may be sent."""
        missing = self.queued + calls - max(0.0, self.available)
        return max(0.0, missing / self.refill) if self.refill > 0 else math.inf


class RateLimiter:
    """Thread-safe FIFO pacing and global back-off from Hetzner's rate-limit headers."""

    def __init__(
        self,
        *,
        reserve_share: float = 0.1,
        max_backoff: float = 60.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 0.0 <= reserve_share < 1.0:
            raise ValueError("rate-limit-reserve must be a share in [0, 1), e.g. 0.1")
        self._cond = threading.Condition()
        self._share = reserve_share
        self._max_backoff = max_backoff
        self._clock = clock
        self._sleep = sleep
        self._limit = DEFAULT_LIMIT
        self._refill = DEFAULT_REFILL
        self._tokens: float | None = None  # unknown until the first answer
        self._stamp = 0.0
        self._inflight = 0
        self._next_ticket = 0
        self._serving = 0
        self._blocked_until = 0.0
        self._consecutive_429 = 0

    @property
    def remaining(self) -> int | None:
        with self._cond:
            return None if self._tokens is None else int(self._estimate(self._clock()))

    def _reserve(self) -> int:
        return math.ceil(self._share * self._limit)

    def _estimate(self, now: float) -> float:
        assert self._tokens is not None
        return min(float(self._limit), self._tokens + max(0.0, now - self._stamp) * self._refill)

    def budget(self) -> Budget:
        """A snapshot of the bucket model (the provisioning queue and the drift sweep use it)."""
        with self._cond:
            now = self._clock()
            tokens = float(self._limit) if self._tokens is None else self._estimate(now)
            reserve = self._reserve()
            return Budget(
                limit=self._limit,
                reserve=reserve,
                available=tokens - reserve,
                refill=self._refill,
                queued=self._next_ticket - self._serving,
            )

    def delay(self) -> float:
        """Seconds the request at the head of the queue must still wait (0: send now)."""
        with self._cond:
            return self._head_wait(self._clock())

    def _head_wait(self, now: float) -> float:
        blocked = self._blocked_until - now
        if blocked > 0:
            return blocked
        if self._tokens is None:
            # Nothing known yet: one request at a time until the first answer tells.
            return 0.05 if self._inflight else 0.0
        spare = self._estimate(now) - self._reserve()
        if spare >= 1.0:
            return 0.0
        return (1.0 - spare) / self._refill

    def acquire(self) -> None:
        """Block until this request may be sent; requests are served in arrival order."""
        with self._cond:
            ticket = self._next_ticket
            self._next_ticket += 1
            while self._serving != ticket:
                self._cond.wait(1.0)
        try:
            while True:
                with self._cond:
                    now = self._clock()
                    wait = self._head_wait(now)
                    if wait <= 0:
                        if self._tokens is not None:
                            self._tokens = self._estimate(now) - 1.0
                            self._stamp = now
                        self._inflight += 1
                        return
                # Sleep in short steps: answers to requests in flight may re-anchor the model.
                step = min(wait, 2.0)
                metrics.RATE_LIMIT_WAIT_SECONDS.inc(step)
                self._sleep(step)
        finally:
            with self._cond:
                self._serving += 1
                self._cond.notify_all()

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        """Learn from one answer (to a request `acquire` let through)."""
        with self._cond:
            now = self._clock()
            self._inflight = max(0, self._inflight - 1)
            remaining = _int(headers.get("RateLimit-Remaining"))
            limit = _int(headers.get("RateLimit-Limit"))
            reset = _int(headers.get("RateLimit-Reset"))
            if limit is not None and limit > 0:
                self._limit = limit
            if remaining is not None:
                metrics.RATE_LIMIT_REMAINING.set(remaining)
                if reset is not None and remaining < self._limit and reset > now:
                    learned = (self._limit - remaining) / (reset - now)
                    # Bounded: a clock skew must not make the model wildly optimistic.
                    self._refill = min(max(learned, self._limit / 36000), self._limit / 600)
                # The answer counts every request the server saw; ours still in flight may
                # not be among them yet.
                self._tokens = float(remaining - self._inflight)
                self._stamp = now
            if status != 429:
                self._consecutive_429 = 0
                return
            self._consecutive_429 += 1
            if remaining is None:
                self._tokens, self._stamp = 0.0, now
            backoff = min(self._max_backoff, 2.0 ** (self._consecutive_429 - 1))
            retry_after = _int(headers.get("Retry-After"))
            if retry_after is not None:
                backoff = min(self._max_backoff, max(backoff, float(retry_after)))
            self._blocked_until = max(self._blocked_until, now + backoff)

    def backoff_remaining(self) -> float:
        """Seconds until the global 429 back-off ends (0 when not blocked)."""
        with self._cond:
            return max(0.0, self._blocked_until - self._clock())


class AsyncPacer:
    """An asyncio token bucket for an API without published limits (Tailscale): at most
    `rate` requests per second after a burst of `burst`, served FIFO (asyncio.Lock is fair),
    and every caller held after a 429 (`Retry-After`, or a doubling back-off)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_backoff: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("tailscale-rate-limit must be positive (requests per second)")
        self._rate, self._burst = rate, max(1, burst)
        self._tokens = float(self._burst)
        self._clock = clock
        self._stamp = clock()
        self._lock = asyncio.Lock()
        self._blocked_until = 0.0
        self._streak = 0
        self._max_backoff = max_backoff

    def _refilled(self, now: float) -> float:
        return min(float(self._burst), self._tokens + (now - self._stamp) * self._rate)

    def wait_seconds(self) -> float:
        """Seconds before the next request may go (0: now)."""
        now = self._clock()
        blocked = self._blocked_until - now
        tokens = self._refilled(now)
        return max(blocked, 0.0 if tokens >= 1.0 else (1.0 - tokens) / self._rate)

    async def acquire(self) -> None:
        async with self._lock:
            # A plain sleep: nothing but time (and a 429 answer, which only lengthens the
            # wait) changes when the head of the line may go.
            wait = self.wait_seconds()
            while wait > 0:
                await asyncio.sleep(wait)
                wait = self.wait_seconds()
            now = self._clock()
            self._tokens = self._refilled(now) - 1.0
            self._stamp = now

    def observe(self, status: int, retry_after: float | None) -> None:
        if status != 429:
            self._streak = 0
            return
        self._streak += 1
        backoff = min(self._max_backoff, 2.0 ** (self._streak - 1))
        if retry_after is not None:
            backoff = min(self._max_backoff, max(backoff, retry_after))
        self._blocked_until = max(self._blocked_until, self._clock() + backoff)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
