"""SQLite's write transactions: their ``BEGIN IMMEDIATE`` goes to the driver, not through a
SQLAlchemy statement.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError

from app.core.endpoints import Endpoint
from app.core.ports import Delivered, Lease
from app.core.relay import Relay
from app.store.cipher import TokenCipher
from app.store.engine import session_factory
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
