"""Throwaway databases on the three backends, one per test that asks for one.

The servers are named by environment variables (defaults: the local PostgreSQL and MariaDB that
`.ci/run` makes sure are up). Each database gets a unique name so parallel runs never collide.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

PG_ADMIN_URL = os.environ.get(
    "SYNCBOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
MYSQL_ADMIN_URL = os.environ.get(
    "SYNCBOT_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"
)
BACKENDS = ("sqlite", "postgresql", "mysql")


@contextmanager
def throwaway_database(backend: str, tmp_path: Path) -> Iterator[URL]:
    """Yield the URL of a new empty database on ``backend``; drop it afterwards."""
    if backend == "sqlite":
        yield make_url(f"sqlite:///{tmp_path / 'syncbot-test.db'}")
        return
    name = f"sbt_{uuid.uuid4().hex[:12]}"
    admin_url = make_url(PG_ADMIN_URL if backend == "postgresql" else MYSQL_ADMIN_URL)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        create_database(conn, backend, name)
    try:
        yield admin_url.set(database=name)
    finally:
        with admin.connect() as conn:
            drop_database(conn, backend, name)
        admin.dispose()


def create_database(conn, backend: str, name: str) -> None:
    if backend == "postgresql":
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    else:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))


def drop_database(conn, backend: str, name: str | None) -> None:
    if backend == "postgresql":
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    else:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))


class MigratedTemplates:
    """One database per backend migrated to head once per test session, cloned per test.

    Migrating a fresh PostgreSQL or MariaDB database costs seconds on this machine; cloning
    costs milliseconds: PostgreSQL copies a template database, MariaDB replays the template's
    ``SHOW CREATE TABLE`` statements, SQLite copies the file.
    """

    def __init__(self, root: Path) -> None:
        self._root = root
        self._templates: dict[str, URL] = {}
        # The MariaDB template's CREATE TABLE statements, read once: it never changes after
        # its migration, and reading them per clone cost three round trips a table.
        self._mysql_tables: list[str] | None = None
        self._cleanups: list[tuple[str, URL]] = []

    def _template(self, backend: str) -> URL:
        if backend in self._templates:
            return self._templates[backend]
        from app.store.engine import make_engine
        from app.store.migrate import upgrade
        from tests.conftest import local_settings

        if backend == "sqlite":
            url = make_url(f"sqlite:///{self._root / 'template.db'}")
        else:
            name = f"sbt_tpl_{uuid.uuid4().hex[:10]}"
            admin_url = make_url(PG_ADMIN_URL if backend == "postgresql" else MYSQL_ADMIN_URL)
            admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                create_database(conn, backend, name)
            admin.dispose()
            url = admin_url.set(database=name)
            self._cleanups.append((backend, url))
        engine = make_engine(local_settings(), url=url)
        upgrade(engine)
        engine.dispose()
        self._templates[backend] = url
        return url

    @contextmanager
    def clone(self, backend: str, tmp_path: Path) -> Iterator[URL]:
        template = self._template(backend)
        if backend == "sqlite":
            import shutil

            target = tmp_path / "syncbot-test.db"
            shutil.copyfile(template.database or "", target)
            yield make_url(f"sqlite:///{target}")
            return
        name = f"sbt_{uuid.uuid4().hex[:12]}"
        admin = create_engine(
            template.set(database=template.database if backend == "mysql" else "postgres"),
            isolation_level="AUTOCOMMIT",
        )
        try:
            with admin.connect() as conn:
                if backend == "postgresql":
                    conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template.database}"'))
                else:
                    if self._mysql_tables is None:
                        self._mysql_tables = _mysql_tables(conn, template.database or "")
                    _clone_mysql(conn, template.database or "", name, self._mysql_tables)
            yield template.set(database=name)
        finally:
            with admin.connect() as conn:
                drop_database(conn, backend, name)
            admin.dispose()

    def close(self) -> None:
        for backend, url in self._cleanups:
            admin_url = url.set(database="postgres" if backend == "postgresql" else "test")
            admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                drop_database(conn, backend, url.database)
            admin.dispose()


def _mysql_tables(conn, template: str) -> list[str]:
    """The ``SHOW CREATE TABLE`` statement of every table of the database ``template``."""
    tables = (
        conn.execute(
            text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"),
            {"s": template},
        )
        .scalars()
        .all()
    )
    return [
        conn.execute(text(f"SHOW CREATE TABLE `{template}`.`{table}`")).one()[1]
        for table in tables
    ]


def _clone_mysql(conn, template: str, name: str, tables: list[str]) -> None:
    create_database(conn, "mysql", name)
    conn.execute(text("SET FOREIGN_KEY_CHECKS=0"))
    try:
        conn.execute(text(f"USE `{name}`"))
        for ddl in tables:
            conn.execute(text(ddl))
        conn.execute(
            text(
                f"INSERT INTO `{name}`.alembic_version SELECT * FROM `{template}`.alembic_version"
            )
        )
    finally:
        conn.execute(text("SET FOREIGN_KEY_CHECKS=1"))
