"""Poll for a condition with a deadline, instead of sleeping a fixed time and hoping.

A fixed sleep is either too short on a loaded machine (a flaky test) or too long everywhere (a
slow one). ``wait_for`` returns as soon as the condition holds and fails with the last value it
saw when the deadline passes; deadlines are generous because they only bound failures.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT = 20.0


def wait_for(
    check: Callable[[], T],
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.05,
    *,
    context: Callable[[], str] | None = None,
) -> T:
    """Call ``check`` until it returns something truthy, and return that.

    Raises:
        AssertionError: ``check`` stayed falsy for ``timeout`` seconds; the message carries
            its last value and ``context()`` (e.g. the tail of a server's log).
    """
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() >= deadline:
            extra = f"\n{context()}" if context is not None else ""
            raise AssertionError(f"condition not met within {timeout}s (last: {last!r}){extra}")
        time.sleep(interval)


async def wait_for_async(
    check: Callable[[], T], within: float = DEFAULT_TIMEOUT, interval: float = 0.01
) -> T:
    """:func:`wait_for` for a test running on an event loop (yields to it between checks)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        last = check()
        if last:
            return last
        if loop.time() >= deadline:
            raise AssertionError(f"condition not met within {within}s (last: {last!r})")
        await asyncio.sleep(interval)
