"""The process-wide runtime: settings, database, cipher, the adapters, and what they serve.

:func:`app.assembly.build_runtime` (the composition root) is the one place that turns
:class:`~app.settings.Settings` into a runtime; it lists, in one explicit order:

* ``runtime.routes`` — Starlette routes/mounts served by :func:`app.web.create_app`;
* ``runtime.workers`` — background workers started and stopped by the ASGI lifespan;
* ``runtime.maintenance`` — callables run by the periodic tick (the scheduler's Lambda task
  ``tick``, or the in-process ticker of ``syncbot serve``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session, sessionmaker
from starlette.routing import BaseRoute

from app.settings import Settings
from app.store.cipher import TokenCipher
from app.store.models import OAuthState, ProcessedEvent
from app.store.rows import affected

if TYPE_CHECKING:
    from app.bridge.setup import SlackBridge
    from app.matrix.setup import MatrixAdapter
    from app.metrics import Metrics
    from app.services import Services
    from app.slack.home.app import HomeApp
    from app.slack.oauth import SlackInstalls
    from app.slack.socket_manager import SocketModeManager
    from app.slack.socket_state import ConnectionBoard

log = logging.getLogger("syncbot.runtime")


class Worker(Protocol):
    """A background worker owned by the runtime (an outbox drainer, a socket client...)."""

    async def start(self) -> None:
        """Begin working; return once started (the work runs in its own task)."""

    async def stop(self) -> None:
        """Finish or hand back in-flight work and return when stopped."""


MaintenanceTask = Callable[["Runtime"], int | None]


@dataclass
class Runtime:
    """Live objects of one process. Build with :func:`app.assembly.build_runtime`."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    cipher: TokenCipher
    services: Services
    installs: SlackInstalls
    home: HomeApp
    socket_mode: SocketModeManager | None = None
    matrix: MatrixAdapter | None = None
    bridge: SlackBridge | None = None
    routes: list[BaseRoute] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)
    maintenance: list[MaintenanceTask] = field(default_factory=list)
    # The Prometheus registry and live series, made with /metrics (app.metrics.metrics_of).
    metrics: Metrics | None = None

    @property
    def board(self) -> ConnectionBoard | None:
        """This process's live Socket Mode connection states (health), if it runs any."""
        return self.socket_mode.board if self.socket_mode is not None else None

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
        removed = affected(events) + affected(states)
    if removed:
        log.info("purged expired claims", extra={"rows": removed})
    return removed
