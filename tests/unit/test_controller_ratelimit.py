"""The shared Hetzner budget: a bucket model from RateLimit-* headers, a reserve, FIFO service,
a global back-off on 429; and the Tailscale pacer."""

from __future__ import annotations

import asyncio
import math
import threading
import time

import pytest

from aura.controller.clients.ratelimit import AsyncPacer, Budget, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Bucket:
    """Hetzner's side: `capacity` tokens refilled at `refill`/s, answering like the API."""

    def __init__(self, clock: Clock, capacity: int, refill: float) -> None:
        self.clock, self.capacity, self.refill = clock, capacity, refill
        self.tokens, self.stamp = float(capacity), clock.now
        self.refused = 0

    def call(self) -> tuple[int, dict[str, str]]:
        now = self.clock.now
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.refill)
        self.stamp = now
        status = 200
        if self.tokens >= 1:
            self.tokens -= 1
        else:
            status, self.refused = 429, self.refused + 1
        reset = now + (self.capacity - self.tokens) / self.refill
        return status, {
            "RateLimit-Limit": str(self.capacity),
            "RateLimit-Remaining": str(int(self.tokens)),
            "RateLimit-Reset": str(math.ceil(reset)),
        }


def _limiter(clock: Clock, **kw: float) -> RateLimiter:
    return RateLimiter(clock=clock, sleep=clock.sleep, **kw)  # type: ignore[arg-type]


def test_a_burst_drains_to_the_reserve_then_runs_at_the_refill_rate_without_a_429() -> None:
    clock = Clock()
    bucket = Bucket(clock, capacity=200, refill=1.0)
    limiter = _limiter(clock, reserve_share=0.1)
    sent_at = []
    for _ in range(400):
        limiter.acquire()
        sent_at.append(clock.now)
        limiter.observe(*bucket.call())
    assert bucket.refused == 0
    # 180 go at once (200 minus the reserve of 20), the rest at about one per second.
    assert sent_at[179] == sent_at[0]
    paced = sent_at[200:]
    rate = (len(paced) - 1) / (paced[-1] - paced[0])
    assert 0.9 < rate < 1.1, rate
    assert bucket.tokens >= 19  # the reserve stayed for the project's other users


def test_others_spending_the_project_budget_slow_us_down_not_into_429s() -> None:
    clock = Clock()
    bucket = Bucket(clock, capacity=100, refill=1.0)
    limiter = _limiter(clock, reserve_share=0.1)
    for i in range(300):
        if i % 3 == 0:
            bucket.call()  # another client of the same project
        limiter.acquire()
        limiter.observe(*bucket.call())
    assert bucket.refused == 0


def test_zero_reserve_uses_the_whole_bucket_and_a_bad_share_is_refused() -> None:
    clock = Clock()
    bucket = Bucket(clock, capacity=50, refill=1.0)
    limiter = _limiter(clock, reserve_share=0.0)
    for _ in range(50):
        limiter.acquire()
        limiter.observe(*bucket.call())
    assert clock.slept == []
    with pytest.raises(ValueError, match="rate-limit-reserve"):
        RateLimiter(reserve_share=1.5)


def test_budget_snapshot_and_its_estimate() -> None:
    clock = Clock()
    limiter = _limiter(clock, reserve_share=0.1)
    limiter.observe(
        200,
        {
            "RateLimit-Limit": "3600",
            "RateLimit-Remaining": "400",
            "RateLimit-Reset": str(int(clock.now) + 3200),
        },
    )
    budget = limiter.budget()
    assert budget.limit == 3600 and budget.reserve == 360
    assert budget.available == pytest.approx(40)
    assert budget.refill == pytest.approx(1.0)
    assert budget.seconds_for(40) == 0.0
    assert budget.seconds_for(100) == pytest.approx(60)
    assert Budget(3600, 360, -10, 2.0, queued=5).seconds_for(1) == pytest.approx(3.0)


def test_429_blocks_every_caller_with_growing_capped_backoff() -> None:
    clock = Clock()
    limiter = _limiter(clock, max_backoff=4.0)
    limiter.observe(429, {})
    assert limiter.backoff_remaining() == 1.0
    limiter.observe(429, {})
    limiter.observe(429, {})
    limiter.observe(429, {})
    assert limiter.backoff_remaining() == 4.0
    limiter.observe(200, {"RateLimit-Remaining": "3600", "RateLimit-Limit": "3600"})
    limiter.acquire()
    assert sum(clock.slept) == pytest.approx(4.0)
    limiter.observe(429, {"RateLimit-Remaining": "3000"})
    assert limiter.backoff_remaining() == 1.0  # a success resets the streak


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    clock = Clock()
    limiter = _limiter(clock, max_backoff=30.0)
    limiter.observe(429, {"Retry-After": "7"})
    assert limiter.backoff_remaining() == 7.0
    limiter.observe(429, {"Retry-After": "700"})
    assert limiter.backoff_remaining() == 30.0


def test_callers_are_served_first_come_first_served() -> None:
    limiter = RateLimiter(max_backoff=0.5)
    # A 429 (another client drained the bucket, which has refilled since): everyone waits
    # the back-off of ~0.5 s, and a line forms.
    limiter.observe(429, {"RateLimit-Limit": "3600", "RateLimit-Remaining": "3600"})
    served: list[int] = []
    lock = threading.Lock()

    def call(i: int) -> None:
        limiter.acquire()
        with lock:
            served.append(i)

    threads = []
    for i in range(8):
        thread = threading.Thread(target=call, args=(i,), daemon=True)
        thread.start()
        threads.append(thread)
        time.sleep(0.02)  # arrival order
    for thread in threads:
        thread.join(5)
    assert served == list(range(8))


async def test_the_tailscale_pacer_holds_its_rate_after_the_burst() -> None:
    pacer = AsyncPacer(rate=50.0, burst=2)
    started = time.monotonic()
    order: list[int] = []

    async def call(i: int) -> None:
        await pacer.acquire()
        order.append(i)

    await asyncio.gather(*(call(i) for i in range(7)))
    # 2 at once, then 5 more at 50/s: at least 0.1 s.
    assert time.monotonic() - started >= 0.09
    assert order == list(range(7))
    pacer.observe(429, 0.2)
    assert pacer.wait_seconds() >= 0.19
    with pytest.raises(ValueError, match="tailscale-rate-limit"):
        AsyncPacer(rate=0, burst=1)
