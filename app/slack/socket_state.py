"""Socket Mode connection states, the backoff between attempts, and where states are recorded.

The state machine is the seed's: disconnected -> requesting_url -> connecting -> connected, with
refreshing on a ``disconnect`` warning and failed on an authentication error. A
:class:`ConnectionBoard` keeps the latest state of every workspace in memory (for ``/health``
and ``/metrics`` of this process) and writes each transition to ``socket_connections`` so
``syncbot status`` in another process sees it too.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections import deque
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from app.store.models_health import SocketConnection

log = logging.getLogger("syncbot.slack.socket")

TRANSITION_MEMORY = 1000


class ConnectionState(enum.StrEnum):
    """Where one workspace's Socket Mode connection is (the seed's ``connection_status``)."""

    DISCONNECTED = "disconnected"
    REQUESTING_URL = "requesting_url"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    REFRESHING = "refreshing"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class ConnectionSnapshot:
    """The last known state of one workspace's connection; never holds a token or URL."""

    team_id: str
    state: ConnectionState
    detail: str | None = None
    attempts: int = 0
    errors: int = 0
    last_event_at: datetime | None = None
    connected_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with full jitter, so many workspaces do not reconnect in step.

    Attributes:
        base: the ceiling of the first delay, in seconds.
        cap: the largest delay ever returned.
        rate_limited: how long to wait after a 429 that carries no ``Retry-After``.
    """

    base: float = 1.0
    cap: float = 60.0
    rate_limited: float = 60.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The wait before attempt number ``attempt`` (1 for the first retry).

        Returns:
            A delay in ``[ceiling / 2, ceiling]`` where ceiling is ``min(cap, base * 2**(n-1))``;
            the floor keeps a flapping connection from retrying in a tight loop.
        """
        ceiling = min(self.cap, self.base * 2 ** max(0, attempt - 1))
        return (rng or random).uniform(ceiling / 2, ceiling)


class ConnectionBoard:
    """Latest connection state per workspace, in memory and persisted on each transition."""

    def __init__(self, sessions: sessionmaker[Session] | None = None) -> None:
        self._sessions = sessions
        self._states: dict[str, ConnectionSnapshot] = {}
        self._writes: set[asyncio.Task[None]] = set()
        # Writes run in threads; the lock (FIFO) keeps them in transition order.
        self._write_lock = asyncio.Lock()
        # Recent transitions, oldest first (bounded: a process may run for months).
        self.transitions: deque[tuple[str, ConnectionState]] = deque(maxlen=TRANSITION_MEMORY)

    def get(self, team_id: str) -> ConnectionSnapshot | None:
        return self._states.get(team_id)

    def all(self) -> dict[str, ConnectionSnapshot]:
        return dict(self._states)

    def set_state(
        self,
        team_id: str,
        state: ConnectionState,
        *,
        detail: str | None = None,
        attempts: int | None = None,
        error: bool = False,
    ) -> ConnectionSnapshot:
        """Record a transition (or a repeated state with new detail) and persist it."""
        now = datetime.now(UTC)
        old = self._states.get(team_id) or ConnectionSnapshot(team_id, state)
        snap = replace(
            old,
            state=state,
            detail=detail,
            attempts=old.attempts if attempts is None else attempts,
            errors=old.errors + (1 if error else 0),
            connected_at=now if state is ConnectionState.CONNECTED else old.connected_at,
            updated_at=now,
        )
        self._states[team_id] = snap
        self.transitions.append((team_id, state))
        self._persist(snap)
        return snap

    def event_seen(self, team_id: str) -> None:
        """Note an envelope received (memory only: a database write per event is too much)."""
        old = self._states.get(team_id)
        if old is not None:
            self._states[team_id] = replace(old, last_event_at=datetime.now(UTC))

    def forget(self, team_id: str) -> None:
        self._states.pop(team_id, None)

    async def flush(self) -> None:
        """Wait for pending database writes (on shutdown and in tests)."""
        while self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)

    def _persist(self, snap: ConnectionSnapshot) -> None:
        if self._sessions is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write(snap)
            return
        task = loop.create_task(self._write_in_order(snap))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write_in_order(self, snap: ConnectionSnapshot) -> None:
        async with self._write_lock:
            await asyncio.to_thread(self._write, snap)

    def _write(self, snap: ConnectionSnapshot) -> None:
        assert self._sessions is not None
        try:
            with self._sessions() as session, session.begin():
                row = session.get(SocketConnection, snap.team_id)
                if row is None:
                    row = SocketConnection(team_id=snap.team_id)
                    session.add(row)
                row.state = str(snap.state)
                row.detail = snap.detail[:255] if snap.detail else None
                row.attempts = snap.attempts
                row.errors = snap.errors
                row.last_event_at = snap.last_event_at
                row.connected_at = snap.connected_at
                row.updated_at = snap.updated_at or datetime.now(UTC)
        except Exception as exc:
            # The in-memory state stays authoritative for this process; a database outage
            # shows up in /health on its own.
            log.warning(
                "could not persist connection state",
                extra={"team_id": snap.team_id, "error": type(exc).__name__},
            )
