"""How a long-running syncbot process runs: on which event loop, and with which heap.

Both settings are for the delivery hot path of ``syncbot serve`` (measured in
``bench/RESULTS.md``):

- **uvloop** when it is installed (the lock files carry it): the loop's own bookkeeping
  (callbacks, timers, sockets, the self-pipe that hands a store thread's result back) runs in C
  instead of asyncio's pure-Python loop. Without uvloop (a platform it has no wheel for) the
  standard loop runs the same code.
- **The start-up heap frozen** (:func:`gc.freeze`): everything imported and built before the
  first request (SQLAlchemy, slack_sdk, the runtime) lives as long as the process, yet each
  full collection walked it again: 150 to 330 ms during which the loop stood still, which was the
  slowest message of a 50-message run. Frozen objects are left out of every collection; what
  is allocated afterwards is collected as before.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable

UVLOOP = "uvloop"
ASYNCIO = "asyncio"


def loop_name() -> str:
    """``"uvloop"`` when it can be imported here, else ``"asyncio"`` (uvicorn's names)."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return ASYNCIO
    return UVLOOP


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """A new-loop function for :class:`asyncio.Runner`: the loop ``syncbot serve`` runs on."""
    if loop_name() == UVLOOP:
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def freeze_startup_heap() -> int:
    """Collect once, then leave every object alive now out of later collections.

    Returns how many objects are frozen. Call it once start-up is done, just before serving.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
