"""Workspace groups and what App Home needs to keep: members, join limits, published channels.

A group is a circle of workspaces that may see each other's published channels. A published
channel *is* a sync (``syncs`` + ``sync_endpoints``): messages then flow through the relay and the
outbox like any other. :class:`GroupSync` only records to whom the sync is visible.

Foreign keys:
* a group owns its memberships and publications (CASCADE);
* a workspace owns its memberships and failed join attempts (CASCADE); the group a workspace
  created or the invitation it sent outlive it (SET NULL), and so does a sync it published, for
  the subscribers (SET NULL: "the publisher left"); a direct publication to a workspace that is
  purged stays ``direct`` with no target (SET NULL), so only its publisher sees it (to unpublish);
* a sync owns its publication record (CASCADE).

``home_versions`` is keyed by team id alone (no key to refer to): a home may be opened before
anything else is known of its workspace.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.store.models import ENDPOINT, MYSQL_TABLE, Base, utcnow


class WorkspaceGroup(Base):
    """A circle of workspaces that publish channels to one another."""

    __tablename__ = "workspace_groups"
    __table_args__ = (MYSQL_TABLE,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    # Shown to the group's admins so they can pass it on; joining with it is rate limited.
    invite_code: Mapped[str] = mapped_column(String(16), unique=True)
    created_by_workspace_id: Mapped[int | None] = mapped_column(
        ForeignKey("workspaces.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GroupMember(Base):
    """A workspace in a group: ``active``, or ``invited`` until it accepts."""

    __tablename__ = "workspace_group_members"
    __table_args__ = (UniqueConstraint("group_id", "workspace_id"), MYSQL_TABLE)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("workspace_groups.id", ondelete="CASCADE"))
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))  # active | invited
    role: Mapped[str] = mapped_column(String(16), default="member")  # creator | member
    invited_by_workspace_id: Mapped[int | None] = mapped_column(
        ForeignKey("workspaces.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    joined_at: Mapped[datetime | None] = mapped_column()


class GroupJoinFailure(Base):
    """One wrong invite code tried by a workspace; counted across every instance."""

    __tablename__ = "group_join_failures"
    __table_args__ = (
        Index("ix_group_join_failures_recent", "workspace_id", "attempted_at"),
        MYSQL_TABLE,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)


class GroupSync(Base):
    """A channel published to a group (or to one workspace of it): who may subscribe."""

    __tablename__ = "group_syncs"
    __table_args__ = (MYSQL_TABLE,)

    sync_id: Mapped[int] = mapped_column(
        ForeignKey("syncs.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[int] = mapped_column(
        ForeignKey("workspace_groups.id", ondelete="CASCADE"), index=True
    )
    # NULL once the publisher has left the group (the subscribers keep syncing among themselves).
    publisher_workspace_id: Mapped[int | None] = mapped_column(
        ForeignKey("workspaces.id", ondelete="SET NULL"), index=True
    )
    publisher_endpoint: Mapped[str] = mapped_column(String(ENDPOINT))
    # A direct publication: only ``target_workspace_id`` may subscribe (nobody once it is gone).
    direct: Mapped[bool] = mapped_column(Boolean, default=False)
    target_workspace_id: Mapped[int | None] = mapped_column(
        ForeignKey("workspaces.id", ondelete="SET NULL"), index=True
    )
    channel_name: Mapped[str] = mapped_column(String(255), default="")
    published_by_user_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class HomeVersion(Base):
    """A workspace's home content version: bumped on every change that concerns it.

    A published home carries the version it was built from; when it is opened again with an
    older one it is rebuilt. Kept in the database so every instance agrees.
    """

    __tablename__ = "home_versions"
    __table_args__ = (MYSQL_TABLE,)

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
