"""Engines and sessions per backend, built from settings (never at import time)."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from time import monotonic  # by name, so a test can move the idle check's clock alone
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.errors import StoreError
from app.settings import Settings

log = logging.getLogger("syncbot.store")

# The first file that exists wins when TLS is on and no CA path is configured (contract).
CA_CANDIDATES = (
    "/etc/pki/tls/certs/ca-bundle.crt",  # Amazon Linux / RHEL
    "/etc/ssl/certs/ca-certificates.crt",  # Debian / Ubuntu / Alpine
    "/etc/ssl/cert.pem",  # Alpine, macOS
)
_SAFE_DB_NAME = re.compile(r"^[A-Za-z0-9_]+$")
DRIVERS = {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql", "sqlite": "sqlite"}


def database_url(settings: Settings) -> URL:
    """The SQLAlchemy URL from ``DATABASE_URL`` or the host/user/password/schema variables."""
    backend = settings.database_backend
    if settings.database_url:
        url = make_url(settings.database_url)
        # Accept the URLs operators already have (postgresql://, postgresql+psycopg2://,
        # mysql://) and use the drivers we ship.
        family = "postgresql" if url.get_backend_name() == "postgresql" else url.get_backend_name()
        if family in DRIVERS:
            url = url.set(drivername=DRIVERS[family])
        return url
    port = settings.database_port or (5432 if backend == "postgresql" else 3306)
    return URL.create(
        DRIVERS[backend],
        username=settings.database_user,
        password=settings.database_password,
        host=settings.database_host,
        port=port,
        database=settings.database_schema,
    )


def _ca_path(settings: Settings) -> str | None:
    if settings.database_ssl_ca_path:
        return settings.database_ssl_ca_path
    return next((p for p in CA_CANDIDATES if Path(p).is_file()), None)


def connect_args(settings: Settings, url: URL) -> dict[str, Any]:
    """Driver arguments: TLS per the contract, charset, timeouts."""
    backend = url.get_backend_name()
    args: dict[str, Any] = {}
    if backend == "sqlite":
        # The outbox worker and the web app share the file from different threads.
        return {"check_same_thread": False, "timeout": 30}
    if backend == "postgresql":
        args["connect_timeout"] = 10
        if settings.tls_enabled and "sslmode" not in url.query:
            args["sslmode"] = "verify-full"
            ca = _ca_path(settings)
            if ca:
                args["sslrootcert"] = ca
            else:
                # No bundle on disk: libpq falls back to the system trust store.
                args["sslrootcert"] = "system"
    elif backend == "mysql":
        args.update(charset="utf8mb4", connect_timeout=10)
        if settings.tls_enabled:
            ca = _ca_path(settings)
            args["ssl"] = {"ca": ca} if ca else {}
            args["ssl_verify_cert"] = True
            args["ssl_verify_identity"] = True
    return args


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, open transactions (see _begin below).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        # Wait for a busy file first, so the pragmas below do not fail on another writer.
        cur.execute("PRAGMA busy_timeout=30000")
        # Foreign keys are off by default in SQLite; the schema relies on them.
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        if conn.get_execution_options().get(SQLITE_AUTOCOMMIT):
            return  # see autocommit(): each statement is its own transaction
        # SQLite is single-writer: take the write lock up front so two transactions never
        # read the same state and then race to write it (a deferred transaction would fail
        # with "database is locked" when upgrading its read snapshot).
        _begin_immediate(conn)


def _begin_immediate(conn: Connection) -> None:
    # Sent on the driver's connection: as a SQLAlchemy statement it cost an execution context,
    # its events and a result, once per transaction.
    driver: Any = conn.connection.dbapi_connection  # sqlite3's, with its execute()
    dbapi_error = conn.dialect.loaded_dbapi.Error
    try:
        driver.execute("BEGIN IMMEDIATE")
    except dbapi_error as exc:
        # Raised as SQLAlchemy raises a statement's error: wrapped (callers catch
        # OperationalError on a locked file), the connection invalidated if it is gone.
        lost = conn.dialect.is_disconnect(exc, conn.connection, None)
        if lost:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            "BEGIN IMMEDIATE",
            (),
            exc,
            dbapi_error,
            connection_invalidated=lost,
            dialect=conn.dialect,
        ) from exc


SQLITE_AUTOCOMMIT = "syncbot_autocommit"


def autocommit(conn: Connection) -> Connection:
    """``conn`` with every statement committing on its own: no BEGIN is sent.

    SQLite's driver already runs in autocommit mode (transactions are begun by the hook in
    :func:`_sqlite_pragmas`), so there the hook is told to stay out; the other backends use
    SQLAlchemy's AUTOCOMMIT isolation level.
    """
    if conn.dialect.name == "sqlite":
        return conn.execution_options(**{SQLITE_AUTOCOMMIT: True})
    return conn.execution_options(isolation_level="AUTOCOMMIT")


# A pooled connection is pinged at checkout only when it sat idle in the pool this long. What
# kills idle connections acts after minutes: RDS Proxy's IdleClientTimeout (30 min by default),
# AWS NAT gateways and NLBs (350 s), Azure's load balancer (4 min), MySQL's wait_timeout (8 h),
# PostgreSQL's idle_session_timeout (off unless set). 10 s is far below all of them, so a
# connection they may have closed is still pinged, and far above the milliseconds between a busy
# pool's uses of a connection, so under load no checkout pays a round trip for a ping; one used
# moments ago answered then, and a ping would prove nothing more. A connection that dies within
# the threshold (a failover, a restart) fails its first statement instead: SQLAlchemy then
# invalidates the whole pool and the caller's transaction rolls back, as when it dies mid-use.
PING_IDLE_AFTER = 10.0
# Where a pooled connection's check-in time is kept (its record's info, cleared on reconnect).
_CHECKED_IN_AT = "syncbot_checked_in_at"


def _ping_when_idle(engine: Engine, idle_after: float) -> None:
    """Ping a connection at checkout when it sat idle over ``idle_after`` seconds.

    Replaces ``pool_pre_ping``, which pings at every checkout: a round trip per transaction.
    """
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_conn: Any, record: Any) -> None:
        if dbapi_conn is not None:  # None: invalidated, its next connection starts afresh
            record.info[_CHECKED_IN_AT] = monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        checked_in = record.info.get(_CHECKED_IN_AT)
        # Never checked in: the connection was opened for this checkout, which proved it alive.
        if checked_in is None or monotonic() - checked_in < idle_after:
            return
        try:
            alive = dialect.do_ping(dbapi_conn)
        except dialect.loaded_dbapi.Error as exc:
            # The pool closes this connection and checks out a new one in its place; the others
            # keep their own ping, so the pool is not invalidated as a whole.
            raise DisconnectionError(f"idle pooled connection is gone: {exc}") from exc
        if not alive:
            raise DisconnectionError("idle pooled connection did not answer its ping")


def make_engine(
    settings: Settings,
    *,
    url: URL | None = None,
    pool_size: int = 5,
    ping_idle_after: float = PING_IDLE_AFTER,
) -> Engine:
    """Create the engine for ``settings`` (or an explicit ``url``, used by tests).

    ``ping_idle_after``: seconds a pooled PostgreSQL/MySQL connection may sit idle before its
    checkout pings it (see :data:`PING_IDLE_AFTER`).
    """
    url = url or database_url(settings)
    backend = url.get_backend_name()
    kwargs: dict[str, Any] = {"connect_args": connect_args(settings, url), "future": True}
    if backend == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    else:
        kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)
    engine = create_engine(url, **kwargs)
    if backend == "sqlite":
        _sqlite_pragmas(engine)
    else:
        _ping_when_idle(engine, ping_idle_after)
    return engine


def ensure_database(settings: Settings, url: URL | None = None) -> None:
    """Create the database named by the URL when it is missing and its name is safe.

    Only for PostgreSQL/MySQL; SQLite creates its file on first connect.
    """
    url = url or database_url(settings)
    backend = url.get_backend_name()
    name = url.database
    if backend == "sqlite" or not name or not _SAFE_DB_NAME.match(name):
        return
    admin_db = "postgres" if backend == "postgresql" else None
    admin = make_engine(settings, url=url.set(database=admin_db), pool_size=1)
    try:
        with admin.connect() as conn:
            if backend == "postgresql":
                exists = conn.execute(
                    text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
                ).scalar()
                if not exists:
                    conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                        text(f'CREATE DATABASE "{name}"')
                    )
                    log.info("created database", extra={"database": name})
            else:
                conn.execute(
                    text(
                        f"CREATE DATABASE IF NOT EXISTS `{name}` "
                        "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                    )
                )
    except OperationalError as exc:
        # Lacking CREATE privilege is normal for managed databases created by the deploy.
        log.info("could not create database (continuing)", extra={"error": str(exc)[:200]})
    finally:
        admin.dispose()


def wait_for_database(engine: Engine, *, timeout: float = 20.0) -> None:
    """Retry a cold database (a paused Aurora, a container still starting) briefly."""
    deadline = time.monotonic() + timeout
    delay = 0.25
    while True:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return
        except OperationalError as exc:
            if time.monotonic() + delay > deadline:
                raise StoreError(f"database unreachable: {exc.orig}") from exc
            log.warning("database not ready, retrying", extra={"delay_s": delay})
            time.sleep(delay)
            delay = min(delay * 2, 3.0)


class SqliteWriter:
    """The connection a process's SQLite writes run on, one at a time.

    SQLite has one writer at a time, and a writer that finds the file locked sleeps in
    SQLite's busy handler for 1, 2, 5, 10... ms however soon the lock is free: this process's
    writers queue on a lock instead, handed over at once. Since they take turns anyway,
    they share one connection, held outside the pool: a pooled one cost each write a checkout,
    a new :class:`Connection` and the pool's rollback on its return.

    Disposing the engine (the runtime's close, a test's teardown) closes the connection; the
    next write opens another, as it does after a write that lost its connection.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        # The driver's connection of _conn: an invalidated detached Connection forgets it
        # without closing it.
        self._driver: Any = None
        event.listen(engine, "engine_disposed", self._disposed)

    @contextmanager
    def begin(self, *, autocommit: bool = False) -> Iterator[Connection]:
        """The held connection in a transaction, committed on success, rolled back on error.

        ``autocommit``: no BEGIN is sent, each statement commits on its own (as
        :func:`autocommit`).
        """
        with self._lock:
            conn = self._conn
            if conn is None or conn.invalidated:
                conn = self._open()
            if autocommit:
                # Connection.execution_options changes the connection itself: set back below.
                conn.execution_options(**{SQLITE_AUTOCOMMIT: True})
            try:
                with conn.begin():
                    yield conn
            except BaseException:
                # A lost connection, or a rollback that failed: the next write starts afresh.
                if conn.invalidated or conn.in_transaction():
                    self._close()
                raise
            finally:
                if autocommit and not conn.closed:
                    conn.execution_options(**{SQLITE_AUTOCOMMIT: False})

    def _open(self) -> Connection:
        self._close()
        conn = self._engine.connect()
        # Out of the pool: it takes none of the pool's slots, and closing it closes it.
        conn.detach()
        self._conn, self._driver = conn, conn.connection.dbapi_connection
        return conn

    def _close(self) -> None:
        conn, driver = self._conn, self._driver
        self._conn = self._driver = None
        if conn is None:
            return
        try:
            # Without a rollback (a lost connection would fail it): closing the driver's
            # connection below ends any transaction.
            conn.invalidate()
            conn.close()
        finally:
            driver.close()

    def _disposed(self, _engine: Engine) -> None:
        # After the write in flight, if any (so never from inside a write).
        with self._lock:
            self._close()


# How the store's callers hold a session factory, without importing SQLAlchemy themselves.
Sessions = sessionmaker[Session]


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, future=True)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session inside one transaction: committed on success, rolled back on error."""
    with factory() as session, session.begin():
        yield session
