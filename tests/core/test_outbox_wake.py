"""Waking the outbox worker from another thread (a maintenance round in a loop of its own)."""

from __future__ import annotations

import asyncio
import threading

from tests import builders
from tests.core.conftest import A, World
from tests.wait import wait_for


def test_a_wake_up_from_another_thread_reaches_the_worker(world: World) -> None:
    # asyncio.Event is not thread-safe; the loop's debug mode refuses a foreign thread's set()
    # ("Non-thread-safe operation"), where without it the worker would sleep out its poll.
    loop = asyncio.new_event_loop()
    loop.set_debug(True)
    worker = loop.create_task(world.outbox.run_forever(idle=3600.0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        # Asleep after its first, empty pass: someone waits on the wake-up event.
        wait_for(lambda: bool(world.outbox._wake._waiters))
        world.relay.ingest(builders.post(A, "1.0", "woken"))
        world.outbox.wake()  # from this thread, not the worker's
        wait_for(lambda: len(world.deliverer.calls) == 2, timeout=10)
    finally:
        loop.call_soon_threadsafe(worker.cancel)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
