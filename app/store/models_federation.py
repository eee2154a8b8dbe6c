"""Federation state: single-use pairing codes and the nonces peers have used."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.store.models import MYSQL_TABLE, Base, utcnow


class PairingCode(Base):
    """An invitation for a peer to join one sync; only its hash is stored."""

    __tablename__ = "federation_pairing_codes"
    __table_args__ = (MYSQL_TABLE,)

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    sync_id: Mapped[int] = mapped_column(ForeignKey("syncs.id", ondelete="CASCADE"), index=True)
    # The local endpoint the peer's messages are anchored to (what the peer sees of us).
    anchor: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None] = mapped_column()
    used_by: Mapped[str | None] = mapped_column(String(64))


class FederationNonce(Base):
    """A request nonce a peer has used, kept until its timestamp window has passed."""

    __tablename__ = "federation_nonces"
    __table_args__ = (MYSQL_TABLE,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
