"""``login app`` and ``login token`` dialogues in the database, so a restart or another
instance can continue them.

The bot token given in the first step is stored encrypted (bound to its column) until the app
token completes the login, the user cancels, or the dialogue expires.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from app.errors import CipherError
from app.store.cipher import TokenCipher
from app.store.models_matrix import MatrixLoginDialogue
from app.store.rows import affected

__all__ = ["CONTEXT", "Dialogue", "LoginDialogues"]

CONTEXT = "matrix_login.bot_token"
# How long a half-finished login waits for its next answer.
TTL = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Dialogue:
    """A login in progress; ``bot_token`` is None until the first answer of ``login app``.

    ``kind`` is ``app`` (bot token, then app token) or ``token`` (one user token).
    """

    bot_token: str | None = None
    kind: str = "app"


class LoginDialogues:
    """Pending ``login app`` dialogues by (room, user)."""

    def __init__(self, sessions: sessionmaker[Session], cipher: TokenCipher) -> None:
        self._sessions = sessions
        self._cipher = cipher

    def start(self, room: str, user: str, kind: str = "app") -> None:
        now = datetime.now(UTC)
        with self._sessions() as s, s.begin():
            s.execute(
                delete(MatrixLoginDialogue).where(
                    MatrixLoginDialogue.room_id == room, MatrixLoginDialogue.user_id == user
                )
            )
            s.add(
                MatrixLoginDialogue(
                    room_id=room, user_id=user, kind=kind, expires_at=now + TTL, created_at=now
                )
            )

    def get(self, room: str, user: str) -> Dialogue | None:
        """The dialogue, or None (none started, expired, or its token no longer decrypts)."""
        with self._sessions() as s:
            row = s.execute(
                select(MatrixLoginDialogue).where(
                    MatrixLoginDialogue.room_id == room,
                    MatrixLoginDialogue.user_id == user,
                    MatrixLoginDialogue.expires_at > datetime.now(UTC),
                )
            ).scalar_one_or_none()
            if row is None:
                return None
            if row.bot_token_enc is None:
                return Dialogue(kind=row.kind)
            try:
                token = self._cipher.decrypt(row.bot_token_enc, context=CONTEXT)
                return Dialogue(token, kind=row.kind)
            except CipherError:
                return None

    def give_bot_token(self, room: str, user: str, token: str) -> None:
        with self._sessions() as s, s.begin():
            row = s.get(MatrixLoginDialogue, (room, user))
            if row is not None:
                row.bot_token_enc = self._cipher.encrypt(token, context=CONTEXT)
                row.expires_at = datetime.now(UTC) + TTL

    def end(self, room: str, user: str) -> None:
        with self._sessions() as s, s.begin():
            s.execute(
                delete(MatrixLoginDialogue).where(
                    MatrixLoginDialogue.room_id == room, MatrixLoginDialogue.user_id == user
                )
            )

    def purge_expired(self) -> int:
        with self._sessions() as s, s.begin():
            result = s.execute(
                delete(MatrixLoginDialogue).where(
                    MatrixLoginDialogue.expires_at <= datetime.now(UTC)
                )
            )
        return affected(result)
