"""What every command does first: load settings, set up logging, report problems."""

from __future__ import annotations

import sys

from sqlalchemy import Engine

from app.errors import ConfigError, StoreError
from app.logs import configure_logging
from app.settings import Settings, load_settings
from app.store.engine import ensure_database, wait_for_database

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2


def fail(title: str, problems: list[str]) -> None:
    """Print ``title`` and one line per problem to stderr."""
    print(f"syncbot: {title}", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)


def settings_or_exit(*, log_format: str = "text") -> Settings:
    """Load settings and configure logging; exit with every problem listed when invalid.

    Args:
        log_format: the log format when ``LOG_FORMAT`` is unset: ``text`` for the commands a
            person reads (their logs sit beside their output), ``json`` for ``serve``.
    """
    try:
        # The `syncbot` command finds the database and key `make run` uses.
        settings = load_settings(find_local=True)
    except ConfigError as exc:
        fail("invalid configuration", exc.problems)
        raise SystemExit(EXIT_CONFIG) from None
    configure_logging(
        settings.log_level,
        secrets=settings.secret_values(),
        fmt=settings.log_format or log_format,
    )
    return settings


def connect_or_exit(settings: Settings, engine: Engine, *, wait: float) -> None:
    """Create the database when allowed and wait briefly for it; exit clearly if it stays down."""
    try:
        ensure_database(settings, engine.url)
        wait_for_database(engine, timeout=wait)
    except StoreError as exc:
        fail(
            "cannot reach the database",
            [str(exc), "check DATABASE_URL / DATABASE_HOST and that the server is running"],
        )
        raise SystemExit(EXIT_FAILED) from None
