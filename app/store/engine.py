"""Engines and sessions per backend, built from settings (never at import time)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
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
    def _begin(conn: Any) -> None:
        if conn.get_execution_options().get(SQLITE_AUTOCOMMIT):
            return  # see autocommit(): each statement is its own transaction
        # SQLite is single-writer: take the write lock up front so two transactions never
        # read the same state and then race to write it (a deferred transaction would fail
        # with "database is locked" when upgrading its read snapshot).
        conn.exec_driver_sql("BEGIN IMMEDIATE")


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


def make_engine(settings: Settings, *, url: URL | None = None, pool_size: int = 5) -> Engine:
    """Create the engine for ``settings`` (or an explicit ``url``, used by tests)."""
    url = url or database_url(settings)
    backend = url.get_backend_name()
    kwargs: dict[str, Any] = {"connect_args": connect_args(settings, url), "future": True}
    if backend == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    else:
        kwargs.update(
            pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_recycle=1800
        )
    engine = create_engine(url, **kwargs)
    if backend == "sqlite":
        _sqlite_pragmas(engine)
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


# How the store's callers hold a session factory, without importing SQLAlchemy themselves.
Sessions = sessionmaker[Session]


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, future=True)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session inside one transaction: committed on success, rolled back on error."""
    with factory() as session, session.begin():
        yield session
