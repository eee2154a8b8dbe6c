"""Schema upgrades under a database-wide lock, and the schema check done at start.

Two processes running ``syncbot migrate`` at once (two deploy steps, a deploy and an operator)
must not both run DDL: each takes a lock the database itself arbitrates (PostgreSQL advisory
lock, MySQL ``GET_LOCK``, an exclusive file lock beside a SQLite file), then upgrades from
whatever revision it finds, which is a no-op for the second one.
"""

from __future__ import annotations

import fcntl
import functools
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from app.errors import StoreError

log = logging.getLogger("syncbot.store")

MIGRATIONS = Path(__file__).parent / "migrations"
_PG_LOCK_KEY = 0x5359_4E43  # "SYNC"
_MYSQL_LOCK = "syncbot_migrate"
_LOCK_TIMEOUT_S = 300


def alembic_config() -> Config:
    cfg = Config(str(MIGRATIONS / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


@functools.cache
def head_revisions() -> frozenset[str]:
    """Every head of the revision graph (features may add parallel branches before a merge).

    Read once per process: the scripts ship with the code and do not change while it runs,
    and parsing them costs ~20 ms of CPU that ``/health`` would otherwise pay on every probe.
    """
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if not heads:
        raise StoreError("no migrations found")
    return frozenset(heads)


def head_revision() -> str:
    """The single head, or the sorted heads joined by '+' while branches are unmerged."""
    return "+".join(sorted(head_revisions()))


def current_revisions(engine: Engine) -> frozenset[str]:
    with engine.connect() as conn:
        return frozenset(MigrationContext.configure(conn).get_current_heads())


def _spelled(revs: Iterable[str]) -> str | None:
    return "+".join(sorted(revs)) or None


def revision_of(conn: Connection) -> str | None:
    """The schema revision seen on ``conn`` (inside its transaction), spelled like
    :func:`current_revision`."""
    return _spelled(MigrationContext.configure(conn).get_current_heads())


def current_revision(engine: Engine) -> str | None:
    return _spelled(current_revisions(engine))


def is_at_head(engine: Engine) -> bool:
    return current_revisions(engine) == head_revisions()


@contextmanager
def _migration_lock(conn: Connection) -> Iterator[None]:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
            conn.commit()
    elif dialect == "mysql":
        got = conn.execute(
            text("SELECT GET_LOCK(:n, :t)"), {"n": _MYSQL_LOCK, "t": _LOCK_TIMEOUT_S}
        ).scalar()
        conn.commit()
        if got != 1:
            raise StoreError("timed out waiting for another migration to finish")
        try:
            yield
        finally:
            conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": _MYSQL_LOCK})
            conn.commit()
    else:
        # SQLite: the file lock is taken in _run before connecting (see _sqlite_file_lock).
        yield


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """Serialize migrations of one SQLite file across processes.

    Taken before the first connection: connecting already switches the file to WAL, which
    itself needs the database to itself while another process may be migrating it.
    """
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(engine: Engine, action: str, revision: str) -> None:
    cfg = alembic_config()
    with _sqlite_file_lock(engine), engine.connect() as conn, _migration_lock(conn):
        cfg.attributes["connection"] = conn
        before = MigrationContext.configure(conn).get_current_heads()
        getattr(command, action)(cfg, revision)
        conn.commit()
        after = MigrationContext.configure(conn).get_current_heads()
    if before != after:
        log.info("schema migrated", extra={"from_revision": before, "to_revision": after})


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Upgrade the schema to ``revision`` (default: every head) under the migration lock."""
    _run(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    """Downgrade the schema (tests, and operators undoing a bad deploy)."""
    _run(engine, "downgrade", revision)
