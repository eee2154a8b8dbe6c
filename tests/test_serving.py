"""How serve's process runs: uvloop where installed (asyncio's loop otherwise), heap frozen."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Iterator

import pytest

from app.serving import freeze_startup_heap, loop_factory, loop_name


def running_loop_module(factory: object) -> str:
    async def which() -> str:
        return type(asyncio.get_running_loop()).__module__

    with asyncio.Runner(loop_factory=factory) as runner:  # type: ignore[arg-type]
        return runner.run(which())


def test_serve_runs_on_uvloop_where_it_is_installed() -> None:
    # The locks install it on Linux and macOS (CPython), so this is serve's loop there.
    assert loop_name() == "uvloop"
    assert running_loop_module(loop_factory()).startswith("uvloop")


def test_without_uvloop_serve_runs_on_asyncios_own_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    # As on a platform uvloop has no wheel for: importing it fails.
    monkeypatch.setitem(sys.modules, "uvloop", None)
    assert loop_name() == "asyncio"
    assert running_loop_module(loop_factory()).startswith("asyncio")


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_the_startup_heap_is_left_out_of_later_collections(unfrozen: None) -> None:
    class Built:
        pass

    startup = Built()
    assert freeze_startup_heap() == gc.get_freeze_count() > 0
    # A full collection no longer walks what start-up built...
    assert not any(o is startup for o in gc.get_objects(generation=2))
    # ...while what comes later is still collected.
    later: list[object] = []
    later.append(later)
    assert gc.is_tracked(later)
    del later
    assert gc.collect() >= 1
