"""The shared Hetzner rate limiter: pacing from RateLimit-* headers, global back-off on 429."""

from __future__ import annotations

from aura.controller.clients.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _limiter(clock: Clock, **kw: float) -> RateLimiter:
    return RateLimiter(clock=clock, sleep=clock.sleep, **kw)  # type: ignore[arg-type]


def test_no_wait_while_the_bucket_is_full() -> None:
    clock = Clock()
    limiter = _limiter(clock)
    limiter.observe(
        200,
        {
            "RateLimit-Limit": "3600",
            "RateLimit-Remaining": "3000",
            "RateLimit-Reset": str(int(clock.now) + 600),
        },
    )
    limiter.acquire()
    assert clock.slept == []


def test_paces_requests_when_remaining_is_low() -> None:
    clock = Clock()
    limiter = _limiter(clock, reserve=50)
    limiter.observe(
        200,
        {
            "RateLimit-Limit": "3600",
            "RateLimit-Remaining": "10",
            "RateLimit-Reset": str(int(clock.now) + 3590),
        },
    )
    delays = [limiter.delay() for _ in range(3)]
    assert delays[0] == 0.0
    assert delays[1] > 0.5 and delays[2] > delays[1]  # about one token per second


def test_429_blocks_every_caller_with_growing_capped_backoff() -> None:
    clock = Clock()
    limiter = _limiter(clock, max_backoff=4.0)
    limiter.observe(429, {})
    assert limiter.backoff_remaining() == 1.0
    limiter.observe(429, {})
    limiter.observe(429, {})
    limiter.observe(429, {})
    assert limiter.backoff_remaining() == 4.0
    limiter.acquire()
    assert clock.slept == [4.0]
    limiter.observe(200, {"RateLimit-Remaining": "3600"})
    limiter.observe(429, {})
    assert limiter.backoff_remaining() == 1.0  # a success resets the streak


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    clock = Clock()
    limiter = _limiter(clock, max_backoff=30.0)
    limiter.observe(429, {"Retry-After": "7"})
    assert limiter.backoff_remaining() == 7.0
