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
        if backend == "postgresql":
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        else:
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    try:
        yield admin_url.set(database=name)
    finally:
        with admin.connect() as conn:
            if backend == "postgresql":
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            else:
                conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()
