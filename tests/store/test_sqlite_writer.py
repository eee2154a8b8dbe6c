"""SQLite's write transactions: one held connection (``SqliteWriter``), one writer at a time.

Each write of the store runs on a connection held for writing, not on one checked out of the
pool; disposing the engine closes it; a failed or lost connection does not outlive its write.
Its ``BEGIN IMMEDIATE`` goes to the driver, not through a SQLAlchemy statement.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.exc import OperationalError

from app.core.endpoints import Endpoint
from app.core.ports import Delivered, Lease
from app.core.relay import Relay
from app.store.cipher import TokenCipher
from app.store.engine import session_factory
from app.store.models import Delivery, ProcessedEvent
from app.store.relay_store import SqlStore
from tests import builders
from tests.conftest import TEST_KEY

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])

A = Endpoint.slack("T1", "C1")
B = Endpoint.slack("T2", "C2")
C = Endpoint.slack("T3", "C3")


@pytest.fixture
def store(engine: Engine) -> SqlStore:
    sessions = session_factory(engine)
    cipher = TokenCipher(TEST_KEY)
    for team in ("T1", "T2", "T3"):
        builders.workspace(sessions, cipher, team)
    builders.sync(sessions, "general", A, B, C)
    return SqlStore(sessions)


@pytest.fixture
def drivers(engine: Engine) -> Iterator[list[sqlite3.Connection]]:
    """Every driver connection the engine opens from now on (after the ones it has closed)."""
    engine.dispose()
    opened: list[sqlite3.Connection] = []

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        opened.append(dbapi_conn)

    event.listen(engine, "connect", on_connect)
    yield opened
    event.remove(engine, "connect", on_connect)


@pytest.fixture
def checkouts(engine: Engine) -> Iterator[list[object]]:
    seen: list[object] = []

    def on_checkout(dbapi_conn: Any, *_a: Any) -> None:
        seen.append(dbapi_conn)

    event.listen(engine, "checkout", on_checkout)
    yield seen
    event.remove(engine, "checkout", on_checkout)


def every_write(store: SqlStore, relay: Relay) -> None:
    """Each kind of write the store makes: a relay transaction, claims, a lane's take,
    a completion batch, a retry, a release, a death."""
    relay.ingest(builders.post(A, "1.0"))
    first = store.claim_due(worker="w", limit=10, lease_seconds=60)
    assert len(first) == 2
    store.complete_many([(first[0], Delivered(native_id="1.1"))])
    store.retry_later(first[1], error="e", delay_seconds=0, outcome_unknown=False)
    fresh = relay.ingest(builders.post(A, "2.0"), lease=Lease("lane", 60)).tasks
    assert len(fresh) == 1  # the target with a retry waiting gets its row through a claim
    store.release([t.uid for t in fresh])
    taken = store.take_fresh(str(fresh[0].target), [fresh[0].uid], owner="lane", lease_seconds=60)
    assert taken is not None
    store.mark_dead(fresh[0], error="gone")


def test_writes_check_no_connection_out_of_the_pool(
    store: SqlStore, engine: Engine, checkouts: list[object]
) -> None:
    relay = Relay(store)
    store.release(["none"])  # the first write opens the held connection
    checkouts.clear()
    every_write(store, relay)
    assert checkouts == []
    # Reads still come from the pool.
    assert store.pending(["nope"]) == []
    store.next_due_in()
    assert checkouts


def test_begin_immediate_goes_through_the_driver(store: SqlStore, engine: Engine) -> None:
    statements: list[str] = []
    begun: list[bool] = []

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_a: Any) -> None:
        statements.append(statement.split(None, 1)[0].upper())

    def on_begin(conn: Any) -> None:
        begun.append(True)

    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "begin", on_begin)
    # A completion batch sends no BEGIN, and leaves none pending for the next transaction.
    tasks = Relay(store).ingest(builders.post(A, "1.0"), lease=Lease("lane", 60)).tasks
    store.complete_many([(t, Delivered(native_id=f"{t.target}")) for t in tasks])
    with store.transaction() as tx:
        driver = tx.s.connection.dbapi_connection
        assert driver is not None
        # The write lock is ours before the first statement: a deferred transaction would
        # hold no lock yet.
        assert driver.in_transaction
        other = sqlite3.connect(engine.url.database or "", timeout=0)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()
    assert "BEGIN" not in statements
    assert len(begun) == 3  # the relay's, the batch's (no BEGIN sent), this one


def test_disposing_the_engine_closes_every_driver_connection(
    store: SqlStore, engine: Engine, drivers: list[sqlite3.Connection]
) -> None:
    relay = Relay(store)
    every_write(store, relay)
    assert drivers
    engine.dispose()
    for conn in drivers:
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            conn.execute("SELECT 1")
    # The engine, disposed, still serves: the next write opens a connection.
    relay.ingest(builders.post(A, "3.0"))
    assert store.claim_due(worker="w", limit=10, lease_seconds=60)


def test_a_failed_transaction_rolls_back_and_the_next_one_works(
    store: SqlStore, engine: Engine, checkouts: list[object]
) -> None:
    relay = Relay(store)
    relay.ingest(builders.post(A, "1.0"))
    checkouts.clear()
    with pytest.raises(RuntimeError), store.transaction() as tx:
        assert tx.claim("doomed", ttl_seconds=60)
        raise RuntimeError("the relay failed")
    with pytest.raises(OperationalError), store.transaction() as tx:
        tx.s.exec_driver_sql("SELECT no_such_column FROM processed_events")
    relay.ingest(builders.post(A, "2.0"))
    assert checkouts == []  # the same held connection, still usable
    with engine.connect() as conn:
        keys = conn.execute(select(ProcessedEvent.key)).scalars().all()
        pending = conn.execute(select(func.count()).select_from(Delivery)).scalar()
    assert "doomed" not in keys
    assert pending == 4


def test_a_begin_that_finds_the_file_locked_fails_and_the_next_one_works(
    store: SqlStore, engine: Engine
) -> None:
    relay = Relay(store)
    # Connections that give up on a locked file at once, not after 30 s.
    event.listen(engine, "connect", lambda conn, _rec: conn.execute("PRAGMA busy_timeout=0"))
    engine.dispose()
    other = sqlite3.connect(engine.url.database or "", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        # Raised as SQLAlchemy raises a statement's error, so callers can tell a locked file.
        with pytest.raises(OperationalError, match="locked"):
            relay.ingest(builders.post(A, "1.0"))
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert not relay.ingest(builders.post(A, "1.0")).duplicate


def test_a_lost_held_connection_is_replaced(
    store: SqlStore, engine: Engine, drivers: list[sqlite3.Connection]
) -> None:
    relay = Relay(store)
    relay.ingest(builders.post(A, "1.0"))
    for conn in drivers:
        conn.close()  # gone underneath the pool and the store
    # The write that finds it gone fails; the held connection does not outlive it.
    with pytest.raises(Exception, match="closed database"):
        relay.ingest(builders.post(A, "2.0"))
    assert not relay.ingest(builders.post(A, "2.0")).duplicate
    assert len(store.claim_due(worker="w", limit=10, lease_seconds=60)) == 4
