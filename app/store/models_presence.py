"""Where the bot is without a reason: channels it was added to that no sync uses (yet)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.store.models import MYSQL_TABLE, Base, utcnow


class StrayChannel(Base):
    """A channel the bot joined with no sync: it leaves after a grace period unless one comes.

    Purging the workspace (ON DELETE CASCADE) forgets its rows.
    """

    __tablename__ = "stray_channels"
    __table_args__ = (MYSQL_TABLE,)

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
