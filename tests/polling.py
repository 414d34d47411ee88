"""The one way tests wait for something to become true.

`wait_for` polls a plain function, `wait_for_async` a function or coroutine function from async
code (it sleeps with asyncio, so the event loop keeps serving). Both return the first truthy
value, treat an `AssertionError` raised by the check as "not yet", and fail with an
`AssertionError` naming `what` and the last value seen when `timeout` seconds pass.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_for(
    check: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.05, what: str = ""
) -> T:
    """Poll `check` until it returns something truthy (see the module docstring)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except AssertionError as exc:
            last = exc
        else:
            if last:
                return last  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


async def wait_for_async(
    check: Callable[[], Awaitable[T | None] | T | None],
    within: float = 10.0,
    interval: float = 0.02,
    what: str = "",
) -> T:
    """`wait_for` for async code: `check` may return a value or an awaitable of one; it fails
    after `within` seconds."""
    deadline = time.monotonic() + within
    last: Any = None
    while True:
        try:
            value = check()
            last = await value if inspect.isawaitable(value) else value
        except AssertionError as exc:
            last = exc
        else:
            if last:
                return last  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}; last: {last!r}")
        await asyncio.sleep(interval)
