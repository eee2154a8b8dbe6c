"""The process-wide runtime: settings, database, cipher, and what adapters plug into it.

:func:`build_runtime` is the one place that turns :class:`~app.settings.Settings` into live
objects. Adapters (Slack events, the Matrix appservice, federation, metrics) extend the runtime
rather than the web app or the CLI:

* ``runtime.routes`` — Starlette routes/mounts served by :func:`app.web.create_app`;
* ``runtime.workers`` — background workers started and stopped by the ASGI lifespan;
* ``runtime.maintenance`` — callables run by the periodic tick (the scheduler's Lambda task
  ``tick``, or the in-process ticker of ``syncbot serve``).
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session, sessionmaker
from starlette.routing import BaseRoute

from app.errors import ConfigError
from app.settings import KEY_HINT, Settings
from app.store.cipher import TokenCipher
from app.store.engine import make_engine, session_factory
from app.store.models import OAuthState, ProcessedEvent

log = logging.getLogger("syncbot.runtime")

DEV_KEY_FILE = ".syncbot-dev-key"


class Worker(Protocol):
    """A background worker owned by the runtime (an outbox drainer, a socket client...)."""

    async def start(self) -> None:
        """Begin working; return once started (the work runs in its own task)."""

    async def stop(self) -> None:
        """Finish or hand back in-flight work and return when stopped."""


MaintenanceTask = Callable[["Runtime"], int | None]


@dataclass
class Runtime:
    """Live objects of one process. Build with :func:`build_runtime`."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    cipher: TokenCipher
    routes: list[BaseRoute] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)
    maintenance: list[MaintenanceTask] = field(default_factory=list)
    # The sync machinery (app.services.Services), attached by build_runtime.
    services: Any = None
    # The Prometheus registry and live series (app.metrics.Metrics), made with /metrics.
    metrics: Any = None

    def add_routes(self, *routes: BaseRoute) -> None:
        """Serve ``routes`` from the ASGI app (call before :func:`app.web.create_app`)."""
        self.routes.extend(routes)

    def add_worker(self, worker: Worker) -> None:
        self.workers.append(worker)

    def add_maintenance(self, task: MaintenanceTask) -> None:
        self.maintenance.append(task)

    def run_maintenance(self) -> dict[str, int | None]:
        """Run every maintenance task; one failing task does not stop the others.

        Returns:
            The result (usually a row count) of each task, by task name; ``None`` for a task
            that failed (the failure is logged).
        """
        results: dict[str, int | None] = {}
        for task in self.maintenance:
            name = getattr(task, "__name__", repr(task))
            try:
                results[name] = task(self)
            except Exception:
                log.exception("maintenance task failed", extra={"task": name})
                results[name] = None
        return results

    def close(self) -> None:
        self.engine.dispose()


def purge_expired_claims(runtime: Runtime) -> int:
    """Delete processed-event claims and OAuth states past their expiry."""
    now = datetime.now(UTC)
    with runtime.sessions() as session, session.begin():
        events = session.execute(delete(ProcessedEvent).where(ProcessedEvent.expires_at < now))
        states = session.execute(delete(OAuthState).where(OAuthState.expires_at < now))
        removed = int(events.rowcount or 0) + int(states.rowcount or 0)  # type: ignore[attr-defined]
    if removed:
        log.info("purged expired claims", extra={"rows": removed})
    return removed


def token_key(settings: Settings) -> str:
    """The token encryption key: the configured one, or a local development key.

    In local development without ``TOKEN_ENCRYPTION_KEY`` a random key is generated once into
    ``<SYNCBOT_DATA_DIR>/.syncbot-dev-key`` (mode 0600) and reused, so tokens stored by one run
    still decrypt in the next. Secrets are never stored unencrypted. The embedded database's
    own development key is also read (never made) without ``LOCAL_DEVELOPMENT``, so the
    ``syncbot`` command works from a plain shell on the database ``make run`` created.

    Raises:
        ConfigError: no key outside local development.
    """
    if settings.token_encryption_key:
        return settings.token_encryption_key
    path = Path(settings.data_dir) / DEV_KEY_FILE
    if (settings.local_development or settings.embedded_database) and path.is_file():
        return path.read_text().strip()
    if not settings.local_development:
        raise ConfigError(
            [
                f"TOKEN_ENCRYPTION_KEY is not set: {KEY_HINT} "
                "(or set LOCAL_DEVELOPMENT=true to use a generated development key)"
            ]
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # O_EXCL: two processes starting together must not overwrite each other's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    log.warning(
        "TOKEN_ENCRYPTION_KEY not set: generated a local development key",
        extra={"path": str(path)},
    )
    return key


def build_runtime(settings: Settings, *, engine: Engine | None = None) -> Runtime:
    """Assemble the runtime for ``settings``. Does not connect to the database yet.

    Args:
        settings: validated settings.
        engine: an engine to use instead of one built from the settings (tests).
    """
    engine = engine or make_engine(settings)
    runtime = Runtime(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        cipher=TokenCipher(token_key(settings), settings.token_previous_keys),
    )
    runtime.add_maintenance(purge_expired_claims)
    # The sync machinery (relay, outbox, adapters) plugs its routes, worker and tick in.
    from app.matrix.attach import attach_matrix
    from app.services import attach

    attach(runtime)
    attach_matrix(runtime)  # a no-op unless the Matrix settings are complete
    return runtime
