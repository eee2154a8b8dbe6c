"""On SQLite, this process's writes are serialised on one lock. Handed to the loop's default
pool, concurrent ingests and completions each took a thread that waited on that lock, and the
holder then waited for the interpreter lock at every driver step the waiting threads and the
loop also wanted it for: the throughput run held the write lock ~4 ms per ingest that worked
for ~0.5 ms. The loop now hands a single-writer store's writes to the store's one writer
thread (:mod:`app.core.offload`); a server database keeps concurrent writes on the pool."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine

from app.core import offload
from app.core.dispatch import Dispatcher, InProcessNotifier
from app.core.endpoints import Network
from app.core.ingest import Ingest
from app.core.outbox import Outbox
from app.core.relay import Relay
from app.store.cipher import TokenCipher
from app.store.engine import session_factory
from app.store.memory import MemoryStore
from app.store.relay_store import SqlStore
from tests import builders
from tests.builders import Scripted
from tests.conftest import TEST_KEY
from tests.core.conftest import POLICY, A, B, C

WRITES = ("transaction", "complete_many", "claim_due", "take_fresh", "release")


class ThreadsOf:
    """Records the threads each of the store's write methods ran on."""

    def __init__(self, store: SqlStore) -> None:
        self.seen: dict[str, set[str]] = {}
        for name in WRITES:
            setattr(store, name, self._wrap(name, getattr(store, name)))

    def _wrap(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            self.seen.setdefault(name, set()).add(threading.current_thread().name)
            return method(*args, **kwargs)

        return recorded

    @property
    def threads(self) -> set[str]:
        return set().union(*self.seen.values())


def _sql_store(engine: Engine) -> SqlStore:
    sessions = session_factory(engine)
    cipher = TokenCipher(TEST_KEY)
    for team in ("T1", "T2", "T3"):
        builders.workspace(sessions, cipher, team)
    builders.sync(sessions, "general", A, B, C)
    return SqlStore(sessions)


async def _concurrent_posts(store: SqlStore, senders: int = 8, posts: int = 5) -> Scripted:
    deliverer = Scripted()
    outbox = Outbox(store, {Network.SLACK: deliverer}, policy=POLICY)
    dispatcher = Dispatcher(outbox, store, InProcessNotifier(outbox))
    ingest = Ingest(Relay(store), dispatcher)
    worker = asyncio.ensure_future(outbox.run_forever(idle=0.05))

    async def sender(number: int) -> None:
        for i in range(posts):
            await ingest(builders.post(A, f"{number}.{i}"), deadline=time.monotonic() + 3.0)

    try:
        await asyncio.gather(*(sender(n) for n in range(senders)))
        await outbox.wait_idle()
    finally:
        worker.cancel()
    return deliverer


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_sqlite_writes_from_the_loop_run_on_the_store_writer_thread(engine: Engine) -> None:
    store = _sql_store(engine)
    threads = ThreadsOf(store)
    deliverer = await _concurrent_posts(store)
    assert len(deliverer.calls) == 8 * 5 * 2  # each post to B and C, once
    # Ingests, completions and whatever claims and takes the load needed: one thread.
    assert {"transaction", "complete_many"} <= set(threads.seen)
    assert len(threads.threads) == 1, threads.seen
    assert threads.threads.pop().startswith("syncbot-sqlite-writer")


@pytest.mark.parametrize("backend", ["postgresql", "mysql"], indirect=True)
async def test_a_server_database_keeps_its_writes_on_the_default_pool(engine: Engine) -> None:
    store = _sql_store(engine)
    assert store.write_executor is None
    threads = ThreadsOf(store)
    deliverer = await _concurrent_posts(store)
    assert len(deliverer.calls) == 8 * 5 * 2
    assert not any(t.startswith("syncbot-sqlite-writer") for t in threads.threads)


async def test_a_write_keeps_the_callers_context_and_raises_its_error() -> None:
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    var.set("caller's")
    store = MemoryStore()

    def read() -> str:
        return var.get()

    def fail() -> None:
        raise LookupError("no such row")

    assert await offload.write(store, read) == "caller's"
    with pytest.raises(LookupError, match="no such row"):
        await offload.write(store, fail)
