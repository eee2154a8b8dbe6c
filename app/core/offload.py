"""Running a store's blocking calls off the event loop, writes on the store's writer.

A single-writer database (SQLite) serialises this process's writes anyway (one connection, one
lock: ``SqliteWriter``). Handed to any thread of the loop's default pool, several writes at
once each took a thread that then waited for its turn and, once it had it, waited again for the
interpreter lock at every step of the driver that releases it (the loop and the other waiting
threads wanted it too): a write held the database several times longer than it worked, and
every other write queued behind it. On the store's own writer thread, writes queue in order
without a thread each, and the interpreter lock passes between two threads, the loop's and the
writer's.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from app.core.ports import WritesOn

P = ParamSpec("P")
R = TypeVar("R")


async def write(store: WritesOn, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """``fn(*args, **kwargs)`` on ``store``'s writer thread (or the default pool where it has
    none), as :func:`asyncio.to_thread` runs it: with this task's context variables."""
    loop = asyncio.get_running_loop()
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return await loop.run_in_executor(store.write_executor, call)
