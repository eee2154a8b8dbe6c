"""Echoes we expect back from a network for changes we made as a person, not as our bot.

A reaction or file upload made with a person's own token (their own DMs, where the bot cannot
act) comes back from Slack as that person's event, with nothing in it that says it was ours:
no bot id, and no message metadata (reactions and file shares cannot carry any). So the
deliverer records what it is about to do here, before the call (the echo may arrive before the
answer), and the inbound path consumes the record when the echo comes: one record drops one
echo. Records live in ``processed_events`` (the dedupe claims) under an ``echo:`` prefix, so
the runtime's purge of expired claims removes the ones whose echo never came.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from app.store.models import ProcessedEvent
from app.store.rows import affected

__all__ = ["ExpectedEchoes"]

# Long enough for any echo to arrive (Slack retries an event for about an hour, but a live
# echo comes within seconds); short enough that a stale record cannot eat a later real change.
DEFAULT_TTL = timedelta(minutes=10)
PREFIX = "echo:"


class ExpectedEchoes:
    """Blocking (run off the event loop, or where the caller already blocks on the database)."""

    def __init__(self, sessions: sessionmaker[Session], ttl: timedelta = DEFAULT_TTL) -> None:
        self._sessions = sessions
        self._ttl = ttl

    def expect(self, key: str) -> None:
        """Record that the echo ``key`` will come (again: an earlier record is renewed)."""
        now = datetime.now(UTC)
        full = (PREFIX + key)[:255]
        with self._sessions() as s, s.begin():
            s.execute(delete(ProcessedEvent).where(ProcessedEvent.key == full))
            s.add(ProcessedEvent(key=full, created_at=now, expires_at=now + self._ttl))

    def consume(self, key: str) -> bool:
        """True (once) when ``key`` was expected and has not expired: the event is our echo."""
        full = (PREFIX + key)[:255]
        with self._sessions() as s, s.begin():
            result = s.execute(
                delete(ProcessedEvent).where(
                    ProcessedEvent.key == full, ProcessedEvent.expires_at >= datetime.now(UTC)
                )
            )
        return affected(result) == 1

    def drop(self, key: str) -> None:
        """The change was not made after all: no echo will come."""
        with self._sessions() as s, s.begin():
            s.execute(delete(ProcessedEvent).where(ProcessedEvent.key == (PREFIX + key)[:255]))
