"""The seed's health indicators, gathered from the database and this process.

One :class:`HealthReport` feeds every view of them: ``GET /health`` (through
:func:`health_summary`), ``syncbot status``, the bot's ``status`` command (:func:`format_report`)
and ``GET /metrics``. Gathering is blocking (SQLAlchemy); call it off the event loop.

Indicators: ``connection_status`` per workspace (Socket Mode), ``last_successful_message``,
``error_count`` (errors logged by this process since it started), ``portal_count`` and
``ghost_user_count`` (Matrix), ``message_latency`` (p50/p95 of source -> destination over recent
deliveries), outbox depth and dead deliveries.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.logs import ErrorCounter, install_error_counter
from app.slack.socket_state import ConnectionBoard, ConnectionSnapshot, ConnectionState
from app.store import outbox_admin
from app.store.models import Delivery, MatrixGhost
from app.store.models_health import SocketConnection
from app.store.models_matrix import MatrixPortal
from app.store.outbox_admin import HeldTarget

log = logging.getLogger("syncbot.health")

LATENCY_WINDOW = 500  # most recent deliveries the latency percentiles are computed over
LATENCY_SLA = 5.0  # seconds (the seed's FR-001/FR-002)
# States in which a workspace's events are not arriving and an operator has to act.
ALERT_STATES = frozenset({ConnectionState.FAILED})


@dataclass(frozen=True, slots=True)
class Latency:
    """Source -> destination delay over the most recent deliveries, in seconds."""

    p50: float | None = None
    p95: float | None = None
    samples: int = 0
    total: float = 0.0


@dataclass(frozen=True, slots=True)
class HealthReport:
    """Every indicator at one moment. ``database_ok`` false means the others are unknown."""

    database_ok: bool
    connections: dict[str, ConnectionSnapshot] = field(default_factory=dict)
    last_successful_message: datetime | None = None
    error_count: int = 0
    portal_count: int = 0
    ghost_user_count: int = 0
    latency: Latency = field(default_factory=Latency)
    outbox_depth: int = 0
    dead_deliveries: int = 0
    # Targets whose oldest pending delivery keeps failing (the rest wait behind it).
    held: tuple[HeldTarget, ...] = ()
    dead_by_target: dict[str, int] = field(default_factory=dict)

    @property
    def failed_connections(self) -> list[str]:
        return sorted(t for t, c in self.connections.items() if c.state in ALERT_STATES)

    @property
    def status(self) -> str:
        """``error`` (database down), ``degraded`` (a failed workspace) or ``ok``."""
        if not self.database_ok:
            return "error"
        if self.failed_connections:
            return "degraded"
        return "ok"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form shared by ``/health``, ``syncbot status --json`` and the bot."""
        return {
            "status": self.status,
            "database": "ok" if self.database_ok else "unreachable",
            "connections": {
                team: {
                    "connection_status": str(c.state),
                    "detail": c.detail,
                    "reconnection_attempts": c.attempts,
                    "errors": c.errors,
                    "last_event_at": _iso(c.last_event_at),
                    "connected_at": _iso(c.connected_at),
                    "updated_at": _iso(c.updated_at),
                }
                for team, c in sorted(self.connections.items())
            },
            "failed_connections": self.failed_connections,
            "last_successful_message": _iso(self.last_successful_message),
            "error_count": self.error_count,
            "portal_count": self.portal_count,
            "ghost_user_count": self.ghost_user_count,
            "message_latency": {
                "p50_seconds": _round(self.latency.p50),
                "p95_seconds": _round(self.latency.p95),
                "samples": self.latency.samples,
                "sla_seconds": LATENCY_SLA,
            },
            "outbox_depth": self.outbox_depth,
            "dead_deliveries": self.dead_deliveries,
            "dead_by_target": dict(self.dead_by_target),
            "held_targets": [
                {
                    "target": h.target,
                    "waiting": h.waiting,
                    "attempts": h.attempts,
                    "last_error": h.last_error,
                    "since": _iso(h.since),
                    "next_attempt_at": _iso(h.next_attempt_at),
                }
                for h in self.held
            ],
        }


def gather(
    sessions: sessionmaker[Session],
    *,
    board: ConnectionBoard | None = None,
    errors: ErrorCounter | None = None,
    window: int = LATENCY_WINDOW,
) -> HealthReport:
    """Collect every indicator (blocking).

    Args:
        sessions: the database.
        board: this process's live connection states; they override the stored ones, which
            may lag a transition (or come from another process).
        errors: this process's error counter.
        window: how many recent deliveries the latency percentiles cover.

    Returns:
        The report; with ``database_ok=False`` when the database could not be read (the
        in-process indicators are still filled in).
    """
    live = board.all() if board is not None else {}
    error_count = errors.count if errors is not None else 0
    try:
        with sessions() as session:
            session.execute(text("SELECT 1"))
            stored = _stored_connections(session)
            last = session.scalar(
                select(func.max(Delivery.delivered_at)).where(Delivery.status == "delivered")
            )
            depth = _count(session, Delivery.status == "pending")
            dead = _count(session, Delivery.status == "dead")
            held = tuple(outbox_admin.held_targets(session))
            dead_by_target = outbox_admin.dead_by_target(session) if dead else {}
            latency = _latency(session, window)
            portals = _count_model(session, MatrixPortal, MatrixPortal.state == "active")
            ghosts = _count_model(session, MatrixGhost)
    except SQLAlchemyError as exc:
        log.warning("health: database unreachable", extra={"error": type(exc).__name__})
        return HealthReport(database_ok=False, connections=live, error_count=error_count)
    return HealthReport(
        database_ok=True,
        connections={**stored, **live},
        last_successful_message=last,
        error_count=error_count,
        portal_count=portals,
        ghost_user_count=ghosts,
        latency=latency,
        outbox_depth=depth,
        dead_deliveries=dead,
        held=held,
        dead_by_target=dead_by_target,
    )


class HomeserverState(Protocol):
    """The Matrix adapter's connection to its homeserver, as health reads it."""

    @property
    def connected(self) -> bool: ...

    @property
    def last_error(self) -> str | None: ...

    @property
    def malformed_events(self) -> int: ...


class Monitored(Protocol):
    """What a report is gathered for (:class:`app.runtime.Runtime`)."""

    @property
    def matrix(self) -> HomeserverState | None: ...

    @property
    def sessions(self) -> sessionmaker[Session]: ...

    @property
    def board(self) -> ConnectionBoard | None: ...


def runtime_report(runtime: Monitored) -> HealthReport:
    """Gather the report for ``runtime``, with its Socket Mode board when it runs one."""
    return gather(runtime.sessions, board=runtime.board, errors=install_error_counter())


def health_summary(runtime: Monitored) -> tuple[bool, dict[str, Any]]:
    """What ``GET /health`` adds to its answer (blocking; run it off the event loop).

    A failed workspace degrades the summary but keeps it healthy: a probe that restarted the
    service could not fix a revoked token, and the other workspaces still sync. The database
    being unreachable makes it unhealthy.

    Returns:
        ``(ok, details)``: ``ok`` false only when the database cannot be read.
    """
    report = runtime_report(runtime)
    details = report.to_dict()
    matrix = _matrix_part(runtime)
    if matrix is not None:
        details["matrix"] = matrix
        if matrix["status"] != "ok" and details["status"] == "ok":
            details["status"] = "degraded"
    return report.database_ok, details


def _matrix_part(runtime: Monitored) -> dict[str, Any] | None:
    """The Matrix bridge's state, when it runs here: degraded until the homeserver answered
    (serve keeps Slack and federation up and retries it in the background)."""
    adapter = runtime.matrix
    if adapter is None:
        return None
    # Events a user sent in a shape the bridge cannot read: skipped, so they are counted here.
    skipped = adapter.malformed_events
    if adapter.connected:
        return {"status": "ok", "malformed_events": skipped}
    return {
        "status": "degraded",
        "homeserver": "unreachable",
        "error": adapter.last_error,
        "malformed_events": skipped,
    }


def format_report(report: HealthReport) -> str:
    """A human-readable table of ``report`` (``syncbot status`` and the bot's ``status``)."""
    data = report.to_dict()
    latency = data["message_latency"]
    lines = [
        f"status                   {data['status']}",
        f"database                 {data['database']}",
        f"last successful message  {data['last_successful_message'] or '-'}",
        f"message latency          p50 {_fmt_s(latency['p50_seconds'])}  "
        f"p95 {_fmt_s(latency['p95_seconds'])}  ({latency['samples']} deliveries)",
        f"outbox depth             {data['outbox_depth']}",
        f"dead deliveries          {data['dead_deliveries']}",
        f"errors (this process)    {data['error_count']}",
        f"portals                  {data['portal_count']}",
        f"ghost users              {data['ghost_user_count']}",
    ]
    if data["held_targets"]:
        lines += ["", f"{'HELD TARGET':<40} {'WAITING':>7} {'ATTEMPTS':>8}  LAST ERROR"]
        for h in data["held_targets"]:
            lines.append(
                f"{h['target']:<40} {h['waiting']:>7} {h['attempts']:>8}  {h['last_error'][:60]}"
            )
    if data["dead_by_target"]:
        lines += ["", f"{'DEAD BY TARGET':<40} {'COUNT':>7}  (syncbot deliveries retry)"]
        for target, count in data["dead_by_target"].items():
            lines.append(f"{target:<40} {count:>7}")
    if data["connections"]:
        lines += ["", f"{'WORKSPACE':<12} {'CONNECTION':<15} {'ATTEMPTS':>8}  DETAIL"]
        for team, c in data["connections"].items():
            lines.append(
                f"{team:<12} {c['connection_status']:<15} {c['reconnection_attempts']:>8}  "
                f"{c['detail'] or ''}".rstrip()
            )
    else:
        lines += ["", "no Socket Mode connections"]
    return "\n".join(lines)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (``fraction`` in (0, 1])."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def _latency(session: Session, window: int) -> Latency:
    rows = session.execute(
        select(Delivery.source_time, Delivery.delivered_at)
        .where(Delivery.status == "delivered", Delivery.source_time.is_not(None))
        .order_by(Delivery.delivered_at.desc())
        .limit(window)
    ).all()
    # Clock skew between a source's timestamp and ours can make a delay negative; clamp.
    delays = sorted(
        max(0.0, (delivered - source).total_seconds())
        for source, delivered in rows
        if source is not None and delivered is not None
    )
    if not delays:
        return Latency()
    return Latency(
        p50=percentile(delays, 0.5),
        p95=percentile(delays, 0.95),
        samples=len(delays),
        total=sum(delays),
    )


def _stored_connections(session: Session) -> dict[str, ConnectionSnapshot]:
    out: dict[str, ConnectionSnapshot] = {}
    for row in session.scalars(select(SocketConnection)):
        try:
            state = ConnectionState(row.state)
        except ValueError:
            continue
        out[row.team_id] = ConnectionSnapshot(
            team_id=row.team_id,
            state=state,
            detail=row.detail,
            attempts=row.attempts,
            errors=row.errors,
            last_event_at=row.last_event_at,
            connected_at=row.connected_at,
            updated_at=row.updated_at,
        )
    return out


def _count(session: Session, *where: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(Delivery).where(*where)) or 0)


def _count_model(session: Session, model: Any, *where: Any) -> int:
    # Bridge tables may be missing on a database migrated before the bridge existed; a
    # missing table counts as zero rather than failing the whole report.
    try:
        with session.begin_nested():
            return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)
    except SQLAlchemyError:
        return 0


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def _fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"
