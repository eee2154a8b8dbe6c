"""The HTTP client tests run on both event loops: asyncio's, and uvloop, which serve runs on
(its transports differ from asyncio's in small ways a protocol can trip on)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest
import uvloop

BOTH_LOOPS = ("test_http1.py", "test_webapi.py")


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    if item.path.name not in BOTH_LOOPS:
        return {"asyncio": asyncio.new_event_loop}  # one factory: test ids stay as they were
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
