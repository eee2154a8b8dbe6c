"""Matrix users' Slack user tokens (``login token``), encrypted at rest.

Each row ties a Matrix user to the Slack user the token belongs to in one workspace; the token
is encrypted with the :class:`~app.store.cipher.TokenCipher`, bound to its column, and is only
ever decrypted to call Slack.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from app.errors import CipherError
from app.store.cipher import TokenCipher
from app.store.models_matrix import MatrixPuppet, MatrixUser
from app.store.rows import affected

__all__ = ["CONTEXT", "Puppet", "PuppetStore"]

CONTEXT = "matrix_puppet.user_token"


@dataclass(frozen=True, slots=True)
class Puppet:
    """A Matrix user logged in as a Slack user of a workspace (no token in it)."""

    mxid: str
    team_id: str
    slack_user_id: str


class PuppetStore:
    """The ``matrix_puppets`` rows; blocking (run off the event loop)."""

    def __init__(self, sessions: sessionmaker[Session], cipher: TokenCipher) -> None:
        self._sessions = sessions
        self._cipher = cipher

    def save(self, puppet: Puppet, token: str, *, management_room: str | None = None) -> None:
        """Store (or replace) ``puppet``'s token; a Slack user belongs to one Matrix user, so
        an earlier Matrix user of the same Slack user is logged out of it."""
        now = datetime.now(UTC)
        with self._sessions() as s, s.begin():
            user = s.get(MatrixUser, puppet.mxid)
            if user is None:
                user = MatrixUser(mxid=puppet.mxid, management_room=management_room)
                s.add(user)
            elif management_room and not user.management_room:
                user.management_room = management_room
            s.execute(
                delete(MatrixPuppet).where(
                    MatrixPuppet.team_id == puppet.team_id,
                    MatrixPuppet.slack_user_id == puppet.slack_user_id,
                    MatrixPuppet.user_id != puppet.mxid,
                )
            )
            s.flush()  # the user row and the freed Slack user first
            row = s.get(MatrixPuppet, (puppet.mxid, puppet.team_id))
            if row is None:
                row = MatrixPuppet(user_id=puppet.mxid, team_id=puppet.team_id, created_at=now)
                s.add(row)
            row.slack_user_id = puppet.slack_user_id
            row.token_enc = self._cipher.encrypt(token, context=CONTEXT)
            row.updated_at = now

    def forget(self, mxid: str, team_id: str | None = None) -> list[str]:
        """Drop ``mxid``'s tokens (of one workspace, or all); returns the teams forgotten."""
        with self._sessions() as s, s.begin():
            query = select(MatrixPuppet).where(MatrixPuppet.user_id == mxid)
            if team_id is not None:
                query = query.where(MatrixPuppet.team_id == team_id)
            rows = list(s.scalars(query))
            for row in rows:
                s.delete(row)
            return sorted(r.team_id for r in rows)

    def forget_team(self, team_id: str) -> int:
        """Drop every token of ``team_id`` (the workspace was logged out or uninstalled)."""
        with self._sessions() as s, s.begin():
            result = s.execute(delete(MatrixPuppet).where(MatrixPuppet.team_id == team_id))
        return affected(result)

    def of_user(self, mxid: str) -> list[Puppet]:
        with self._sessions() as s:
            rows = s.scalars(select(MatrixPuppet).where(MatrixPuppet.user_id == mxid))
            return [_puppet(r) for r in rows]

    def by_slack_user(self, team_id: str, slack_user_id: str) -> Puppet | None:
        with self._sessions() as s:
            row = s.scalars(
                select(MatrixPuppet).where(
                    MatrixPuppet.team_id == team_id, MatrixPuppet.slack_user_id == slack_user_id
                )
            ).one_or_none()
            return _puppet(row) if row is not None else None

    def of_team(self, team_id: str) -> list[Puppet]:
        with self._sessions() as s:
            rows = s.scalars(
                select(MatrixPuppet)
                .where(MatrixPuppet.team_id == team_id)
                .order_by(MatrixPuppet.created_at)
            )
            return [_puppet(r) for r in rows]

    def token(self, mxid: str, team_id: str) -> str | None:
        """The decrypted token, or None (none stored, or it no longer decrypts)."""
        with self._sessions() as s:
            row = s.get(MatrixPuppet, (mxid, team_id))
            if row is None:
                return None
            try:
                return self._cipher.decrypt(row.token_enc, context=CONTEXT)
            except CipherError:
                return None


def _puppet(row: MatrixPuppet) -> Puppet:
    return Puppet(mxid=row.user_id, team_id=row.team_id, slack_user_id=row.slack_user_id)
