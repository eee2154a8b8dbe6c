"""Workspace lifecycle: soft-delete on uninstall, restore on reinstall, purge after retention.

Slack tells us a workspace removed the app with ``tokens_revoked`` (bot token) and
``app_uninstalled``. We keep the workspace's rows for ``SOFT_DELETE_RETENTION_DAYS`` so that a
reinstall (often an admin fixing scopes) brings every sync back; its tokens are wiped at once since
they are dead anyway. Its sync endpoints are *suspended* — a status of their own, so a reinstall
resumes exactly those and leaves endpoints an admin paused on purpose paused.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.store.models import SyncEndpoint, Workspace
from app.store.rows import affected

log = logging.getLogger("syncbot.slack.lifecycle")

ACTIVE = "active"
UNINSTALLED = "uninstalled"
# Endpoint status for "paused because its workspace is gone"; never set by an admin.
SUSPENDED = "suspended"


class WorkspaceLifecycle:
    """Soft-deletes, restores and purges workspaces.

    Args:
        sessions: Session factory of the store.
        retention_days: How long a soft-deleted workspace may be restored by a reinstall.
        forget: Called with a team id whose cached clients must be dropped.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        retention_days: int,
        forget: Callable[[str], None] = lambda _team: None,
    ) -> None:
        self._sessions = sessions
        self._retention = timedelta(days=retention_days)
        self._forget = forget

    def soft_delete(self, team_id: str, *, now: datetime | None = None) -> bool:
        """Mark ``team_id`` uninstalled, wipe its tokens and suspend its sync endpoints.

        Returns:
            Whether an installed workspace was soft-deleted (False if unknown or already so).
        """
        now = now or datetime.now(UTC)
        with self._sessions() as s, s.begin():
            row = s.execute(
                select(Workspace).where(Workspace.team_id == team_id).with_for_update()
            ).scalar_one_or_none()
            if row is None or row.status == UNINSTALLED:
                return False
            row.status = UNINSTALLED
            row.deleted_at = now
            row.bot_token_enc = None
            row.bot_refresh_token_enc = None
            row.bot_token_expires_at = None
            row.app_token_enc = None
            row.updated_at = now
            suspended = affected(
                s.execute(
                    update(SyncEndpoint)
                    .where(SyncEndpoint.workspace_id == row.id, SyncEndpoint.status == ACTIVE)
                    .values(status=SUSPENDED)
                )
            )
        self._forget(team_id)
        log.info("workspace uninstalled", extra={"team_id": team_id, "suspended": suspended})
        return True

    def restore_endpoints(self, session: Session, workspace_id: int) -> int:
        """Resume the endpoints suspended by an uninstall, inside the caller's transaction."""
        return affected(
            session.execute(
                update(SyncEndpoint)
                .where(SyncEndpoint.workspace_id == workspace_id, SyncEndpoint.status == SUSPENDED)
                .values(status=ACTIVE)
            )
        )

    def within_retention(
        self, deleted_at: datetime | None, *, now: datetime | None = None
    ) -> bool:
        """Whether a workspace soft-deleted at ``deleted_at`` may still be restored."""
        if deleted_at is None:
            return True
        return (now or datetime.now(UTC)) - deleted_at <= self._retention

    def purge(self, *, now: datetime | None = None) -> int:
        """Hard-delete workspaces soft-deleted longer ago than the retention.

        Their directory, mappings and sync endpoints go with them (foreign keys cascade); syncs
        they took part in stay for the other endpoints.

        Returns:
            The number of workspaces purged.
        """
        cutoff = (now or datetime.now(UTC)) - self._retention
        with self._sessions() as s, s.begin():
            teams = (
                s.execute(
                    select(Workspace.team_id).where(
                        Workspace.status == UNINSTALLED, Workspace.deleted_at < cutoff
                    )
                )
                .scalars()
                .all()
            )
            if not teams:
                return 0
            s.execute(delete(Workspace).where(Workspace.team_id.in_(teams)))
        for team in teams:
            self._forget(team)
        log.info("purged uninstalled workspaces", extra={"count": len(teams)})
        return len(teams)

    async def on_event(self, payload: dict[str, Any]) -> None:
        """``SlackEvents.event_hooks`` entry: soft-delete on ``app_uninstalled``/bot revocation."""
        event = payload.get("event") or {}
        kind = event.get("type")
        team_id = payload.get("team_id")
        if not isinstance(team_id, str) or not team_id:
            return
        if kind == "tokens_revoked":
            # A revoked *user* token (someone who authorized a user scope) leaves the bot working.
            if not (event.get("tokens") or {}).get("bot"):
                return
        elif kind != "app_uninstalled":
            return
        await asyncio.to_thread(self.soft_delete, team_id)
