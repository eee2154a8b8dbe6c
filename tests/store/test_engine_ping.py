"""Pooled connections are pinged at checkout only after sitting idle (``make_engine``).

A ping per checkout cost a round trip per transaction of the relay (#19). These run against the
real servers: the ping is the dialect's own (``do_ping``), counted where SQLAlchemy calls it, and
a server-side kill is the server's (``pg_terminate_backend`` / MariaDB ``KILL``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from app.settings import Settings
from app.store.engine import PING_IDLE_AFTER, make_engine
from tests.wait import wait_for

SERVERS = pytest.mark.parametrize("backend", ["postgresql", "mysql"])


def _count_pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The DBAPI connections ``engine``'s dialect pinged, in order (the real ping still runs)."""
    pinged: list[object] = []
    real = engine.dialect.do_ping

    def counting(dbapi_conn: Any) -> bool:
        pinged.append(dbapi_conn)
        return real(dbapi_conn)

    monkeypatch.setattr(engine.dialect, "do_ping", counting)
    return pinged


def _session_id(conn: Connection) -> int:
    query = (
        "SELECT pg_backend_pid()"
        if conn.dialect.name == "postgresql"
        else "SELECT CONNECTION_ID()"
    )
    return int(conn.execute(text(query)).scalar_one())


@pytest.fixture
def admin(db_url: URL) -> Iterator[Engine]:
    """Another connection to the server, to kill the pool's from outside as the server would."""
    eng = create_engine(db_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    yield eng
    eng.dispose()


def _kill(admin: Engine, session_id: int) -> None:
    with admin.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": session_id})
            alive = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p")
        else:
            conn.execute(text(f"KILL {int(session_id)}"))
            alive = text("SELECT count(*) FROM information_schema.processlist WHERE id = :p")
        # The server ends the session after the call returns: wait until it is really gone,
        # or the ping could still find it answering.
        wait_for(lambda: conn.execute(alive, {"p": session_id}).scalar_one() == 0)


@SERVERS
def test_a_connection_checked_out_right_after_checkin_is_not_pinged(
    db_url: URL, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(settings, url=db_url)
    try:
        pinged = _count_pings(engine, monkeypatch)
        with engine.begin() as conn:
            first = _session_id(conn)
        for _ in range(3):
            with engine.begin() as conn:
                assert _session_id(conn) == first  # the pooled connection, reused
        assert pinged == []
    finally:
        engine.dispose()


@SERVERS
def test_an_idle_connection_killed_by_the_server_is_replaced_at_checkout(
    db_url: URL, settings: Settings, admin: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Any time in the pool counts as idle here, so every checkout of a pooled connection pings.
    engine = make_engine(settings, url=db_url, ping_idle_after=0.0)
    try:
        pinged = _count_pings(engine, monkeypatch)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (n INTEGER)"))
            first = _session_id(conn)
        assert pinged == []  # a connection opened for the checkout is not pinged

        with engine.begin() as conn:  # idle, alive: pinged and kept
            assert _session_id(conn) == first
        assert len(pinged) == 1

        _kill(admin, first)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t (n) VALUES (1)"))
            replacement = _session_id(conn)
        assert replacement != first
        assert len(pinged) == 2  # the dead one's ping; its replacement was opened fresh
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 1
    finally:
        engine.dispose()


@SERVERS
def test_the_default_threshold_still_pings_a_connection_idle_longer(
    db_url: URL, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(settings, url=db_url)
    try:
        pinged = _count_pings(engine, monkeypatch)
        with engine.begin() as conn:
            _session_id(conn)
        # The idle check's clock runs past the threshold (SQLAlchemy's own clock is untouched).
        later = time.monotonic() + PING_IDLE_AFTER + 1
        monkeypatch.setattr("app.store.engine.monotonic", lambda: later)
        with engine.begin() as conn:
            _session_id(conn)
        assert len(pinged) == 1
    finally:
        engine.dispose()


@SERVERS
def test_a_connection_killed_within_the_threshold_fails_its_transaction_and_resets_the_pool(
    db_url: URL, settings: Settings, admin: Engine
) -> None:
    """The price of not pinging a connection used moments ago: the one transaction that meets
    it dead fails with SQLAlchemy's disconnect error (its caller retries), and the pool drops
    every connection it had, so the next transaction runs on a new one."""
    engine = make_engine(settings, url=db_url)
    try:
        with engine.begin() as conn:
            first = _session_id(conn)
        _kill(admin, first)
        with pytest.raises(DBAPIError) as failed:
            with engine.begin() as conn:
                _session_id(conn)
        assert failed.value.connection_invalidated
        with engine.begin() as conn:
            assert _session_id(conn) != first
    finally:
        engine.dispose()


def test_sqlite_engines_never_ping(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(
        settings, url=make_url(f"sqlite:///{tmp_path / 'db.sqlite'}"), ping_idle_after=0.0
    )
    try:
        pinged = _count_pings(engine, monkeypatch)
        for _ in range(3):
            with engine.begin() as conn:
                conn.execute(text("SELECT 1"))
        assert pinged == []
    finally:
        engine.dispose()
