"""Shared set-up of the admin commands: a runtime on a migrated database, or a clear exit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from app.cli.common import EXIT_CONFIG, EXIT_FAILED, connect_or_exit, fail, settings_or_exit
from app.errors import ConfigError
from app.runtime import Runtime
from app.store.migrate import is_at_head


@contextmanager
def admin_runtime(*, wait: float = 10.0) -> Iterator[Runtime]:
    # The composition root imports every adapter: only commands that build a runtime
    # pay for that.
    from app.assembly import build_runtime

    settings = settings_or_exit()
    try:
        runtime = build_runtime(settings)
    except ConfigError as exc:
        fail("invalid configuration", exc.problems)
        raise SystemExit(EXIT_CONFIG) from None
    try:
        connect_or_exit(settings, runtime.engine, wait=wait)
        if not is_at_head(runtime.engine):
            fail("the database schema is not at head", ["run `syncbot migrate` first"])
            raise SystemExit(EXIT_FAILED)
        yield runtime
    finally:
        runtime.close()
