"""``slack_sdk.oauth`` stores backed by our database: single-use states, encrypted installations.

The SDK's own SQL stores keep tokens in plain text (SyncBot shipped exactly that); ours write the
``workspaces`` row with every token encrypted under its column's cipher context.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta

from slack_sdk.oauth import InstallationStore, OAuthStateStore
from slack_sdk.oauth.installation_store import Bot, Installation
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from app.slack.lifecycle import UNINSTALLED, WorkspaceLifecycle
from app.slack.workspaces import BOT_TOKEN_CONTEXT, REFRESH_TOKEN_CONTEXT
from app.store.cipher import TokenCipher
from app.store.models import OAuthState, Workspace
from app.store.rows import affected

log = logging.getLogger("syncbot.slack.oauth")

STATE_TTL = timedelta(minutes=10)


class RetentionExpired(Exception):
    """A reinstall arrived for a workspace whose soft-delete retention has passed unpurged."""


class SqlStateStore(OAuthStateStore):
    """OAuth ``state`` values in ``oauth_states``: random, valid 10 minutes, consumed once."""

    def __init__(self, sessions: sessionmaker[Session], *, ttl: timedelta = STATE_TTL) -> None:
        self._sessions = sessions
        self._ttl = ttl

    def issue(self, *args: object, **kwargs: object) -> str:
        state = secrets.token_urlsafe(32)
        with self._sessions() as s, s.begin():
            s.add(OAuthState(state=state, expires_at=datetime.now(UTC) + self._ttl))
        return state

    def consume(self, state: str) -> bool:
        if not state or len(state) > 128:
            return False
        with self._sessions() as s, s.begin():
            # Deleting is the claim: of two concurrent redirects with one state only one wins.
            deleted = affected(
                s.execute(
                    delete(OAuthState).where(
                        OAuthState.state == state, OAuthState.expires_at > datetime.now(UTC)
                    )
                )
            )
        return deleted == 1


class SqlInstallationStore(InstallationStore):
    """Installations as ``workspaces`` rows with encrypted tokens (one bot per team)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        cipher: TokenCipher,
        lifecycle: WorkspaceLifecycle,
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._lifecycle = lifecycle

    def save(self, installation: Installation) -> None:
        """Store ``installation``; a reinstall within retention restores suspended endpoints.

        Raises:
            RetentionExpired: The workspace was uninstalled longer ago than the retention and
                not yet purged; it must be purged before it can be installed again fresh.
        """
        if not installation.team_id or not installation.bot_token:
            raise ValueError("only workspace installations with a bot token are supported")
        now = datetime.now(UTC)
        with self._sessions() as s, s.begin():
            row = s.execute(
                select(Workspace)
                .where(Workspace.team_id == installation.team_id)
                .with_for_update()
            ).scalar_one_or_none()
            restoring = row is not None and row.status == UNINSTALLED
            if (
                row is not None
                and restoring
                and not self._lifecycle.within_retention(row.deleted_at, now=now)
            ):
                # Purge first (as the tick would) so stale mappings do not come back to life.
                s.delete(row)
                s.flush()
                row, restoring = None, False
            if row is None:
                row = Workspace(team_id=installation.team_id, created_at=now)
                s.add(row)
            row.enterprise_id = installation.enterprise_id
            row.name = installation.team_name or row.name or installation.team_id
            row.bot_user_id = installation.bot_user_id
            row.bot_id = installation.bot_id or row.bot_id
            row.app_id = installation.app_id
            row.bot_token_enc = self._cipher.encrypt(
                installation.bot_token, context=BOT_TOKEN_CONTEXT
            )
            row.bot_refresh_token_enc = (
                self._cipher.encrypt(installation.bot_refresh_token, context=REFRESH_TOKEN_CONTEXT)
                if installation.bot_refresh_token
                else None
            )
            row.bot_token_expires_at = _expires_at(installation.bot_token_expires_at)
            row.scopes = ",".join(installation.bot_scopes or [])
            row.installed_by_user_id = installation.user_id or None
            row.status = "active"
            row.deleted_at = None
            row.updated_at = now
            s.flush()
            resumed = self._lifecycle.restore_endpoints(s, row.id) if restoring else 0
        log.info(
            "workspace installed",
            extra={"team_id": installation.team_id, "restored": restoring, "resumed": resumed},
        )

    def find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        installation = self.find_installation(enterprise_id=enterprise_id, team_id=team_id)
        return None if installation is None else installation.to_bot()

    def find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        if not team_id:
            return None
        with self._sessions() as s:
            row = s.execute(
                select(Workspace).where(Workspace.team_id == team_id)
            ).scalar_one_or_none()
            if row is None or row.status != "active" or not row.bot_token_enc:
                return None
            refresh = (
                self._cipher.decrypt(row.bot_refresh_token_enc, context=REFRESH_TOKEN_CONTEXT)
                if row.bot_refresh_token_enc
                else None
            )
            return Installation(
                app_id=row.app_id,
                enterprise_id=row.enterprise_id,
                team_id=row.team_id,
                team_name=row.name,
                bot_token=self._cipher.decrypt(row.bot_token_enc, context=BOT_TOKEN_CONTEXT),
                bot_id=row.bot_id,
                bot_user_id=row.bot_user_id,
                bot_scopes=row.scopes,
                bot_refresh_token=refresh,
                bot_token_expires_at=row.bot_token_expires_at,
                user_id=row.installed_by_user_id or "",
            )

    def delete_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
    ) -> None:
        if team_id:
            self._lifecycle.soft_delete(team_id)

    def delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        if team_id:
            self._lifecycle.soft_delete(team_id)


def _expires_at(value: int | datetime | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(int(value), UTC)
