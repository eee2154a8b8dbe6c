"""Tables of the Matrix bridge: portals, appservice transactions and reactions we track.

Ghost profiles live in ``matrix_ghosts`` (baseline schema); these tables add what the bridge
needs to be idempotent across restarts, since mautrix-python keeps all of it in memory.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.store.models import MYSQL_TABLE, Base, utcnow


class MatrixPortal(Base):
    """A Matrix room standing for a Slack channel (created by us, or linked by a user).

    ``state`` follows the seed's portal machine: pending -> creating -> active <-> archived ->
    deleted. A row in ``creating`` with no room id is a creation that did not finish; it is
    retried rather than creating a second room.
    """

    __tablename__ = "matrix_portals"
    __table_args__ = (MYSQL_TABLE,)

    # The Slack channel endpoint (``slack:T/C``) the portal bridges.
    endpoint: Mapped[str] = mapped_column(String(255), primary_key=True)
    room_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    alias: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    name: Mapped[str | None] = mapped_column(String(255))
    topic: Mapped[str | None] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MatrixTransaction(Base):
    """An appservice transaction the homeserver pushed and we fully processed."""

    __tablename__ = "matrix_transactions"
    __table_args__ = (MYSQL_TABLE,)

    txn_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    events: Mapped[int] = mapped_column(default=0)
    processed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class MatrixReaction(Base):
    """An ``m.reaction`` event: ours (sent for a remote reaction) or a Matrix user's.

    A redaction names only the event it removes, so both directions need this row: to redact
    our reaction on unreact, and to turn a user's redaction back into an unreact.
    """

    __tablename__ = "matrix_reactions"
    __table_args__ = (
        UniqueConstraint("room_id", "target_event_id", "key", "sender", name="uq_matrix_reaction"),
        MYSQL_TABLE,
    )

    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(255))
    target_event_id: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(128))
    sender: Mapped[str] = mapped_column(String(255))
    ours: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
