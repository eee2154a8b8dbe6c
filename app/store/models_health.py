"""Health state that must outlive one process: the Slack Socket Mode connection per workspace.

``syncbot serve`` writes a row on every state transition (a handful per hour, not per event);
``syncbot status`` and ``GET /health`` of any process read it, so an operator sees a failed
connection even from a shell on another machine.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.store.models import MYSQL_TABLE, Base, utcnow


class SocketConnection(Base):
    """The last known Socket Mode state of one workspace (the seed's ``connection_status``)."""

    __tablename__ = "socket_connections"
    __table_args__ = (MYSQL_TABLE,)

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # disconnected / requesting_url / connecting / connected / refreshing / failed / stopped
    state: Mapped[str] = mapped_column(String(24))
    # Why the connection is not connected (an error code, never a token or a URL).
    detail: Mapped[str | None] = mapped_column(String(255))
    # Failed attempts since the last ``hello`` (the seed's ``reconnection_attempts``).
    attempts: Mapped[int] = mapped_column(default=0)
    errors: Mapped[int] = mapped_column(default=0)
    last_event_at: Mapped[datetime | None] = mapped_column()
    connected_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
