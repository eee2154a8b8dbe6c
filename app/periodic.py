"""Background work on the serving loop: a step repeated at an interval, and a clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("syncbot.periodic")


async def cancel(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` and wait until it has unwound (a no-op for None)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class Periodic:
    """Runs ``step`` at once, then every ``interval`` seconds, until stopped.

    A step that raises is logged and the next one still runs on time: one bad round must not
    end work that nothing else would restart.
    """

    def __init__(self, name: str, step: Callable[[], Awaitable[object]], interval: float) -> None:
        self.name = name
        self.interval = interval
        self._step = step
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        if self.interval > 0 and self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"syncbot-{self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel(task)

    async def _loop(self) -> None:
        while True:
            try:
                await self._step()
            except Exception:
                log.exception("background step failed", extra={"task": self.name})
            await asyncio.sleep(self.interval)
