"""App Home: workspace groups, members, join failures, published channels, home versions.

Revision ID: 0006_groups
Revises: 0005_merge_features
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

import app.store.models

revision = "0006_groups"
down_revision = "0005_merge_features"
branch_labels = None
depends_on = None

# Table options for MySQL, passed to create_table as keyword arguments.
_MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete=ondelete,
    )


def upgrade() -> None:
    op.create_table(
        "workspace_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("invite_code", sa.String(length=16), nullable=False),
        sa.Column("created_by_workspace_id", sa.Integer(), nullable=True),
        sa.Column("created_at", app.store.models.UTCDateTime(), nullable=False),
        _fk("workspace_groups", "created_by_workspace_id", "workspaces", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspace_groups")),
        sa.UniqueConstraint("invite_code", name=op.f("uq_workspace_groups_invite_code")),
        **_MYSQL,
    )
    op.create_index(
        op.f("ix_workspace_groups_created_by_workspace_id"),
        "workspace_groups",
        ["created_by_workspace_id"],
    )
    op.create_table(
        "workspace_group_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("invited_by_workspace_id", sa.Integer(), nullable=True),
        sa.Column("created_at", app.store.models.UTCDateTime(), nullable=False),
        sa.Column("joined_at", app.store.models.UTCDateTime(), nullable=True),
        _fk("workspace_group_members", "group_id", "workspace_groups", "CASCADE"),
        _fk("workspace_group_members", "workspace_id", "workspaces", "CASCADE"),
        _fk("workspace_group_members", "invited_by_workspace_id", "workspaces", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspace_group_members")),
        sa.UniqueConstraint(
            "group_id",
            "workspace_id",
            name=op.f("uq_workspace_group_members_group_id_workspace_id"),
        ),
        **_MYSQL,
    )
    op.create_index(
        op.f("ix_workspace_group_members_workspace_id"),
        "workspace_group_members",
        ["workspace_id"],
    )
    op.create_index(
        op.f("ix_workspace_group_members_invited_by_workspace_id"),
        "workspace_group_members",
        ["invited_by_workspace_id"],
    )
    op.create_table(
        "group_join_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("attempted_at", app.store.models.UTCDateTime(), nullable=False),
        _fk("group_join_failures", "workspace_id", "workspaces", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_join_failures")),
        **_MYSQL,
    )
    op.create_index(
        "ix_group_join_failures_recent", "group_join_failures", ["workspace_id", "attempted_at"]
    )
    op.create_table(
        "group_syncs",
        sa.Column("sync_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("publisher_workspace_id", sa.Integer(), nullable=True),
        sa.Column("publisher_endpoint", sa.String(length=255), nullable=False),
        sa.Column("direct", sa.Boolean(), nullable=False),
        sa.Column("target_workspace_id", sa.Integer(), nullable=True),
        sa.Column("channel_name", sa.String(length=255), nullable=False),
        sa.Column("published_by_user_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", app.store.models.UTCDateTime(), nullable=False),
        _fk("group_syncs", "sync_id", "syncs", "CASCADE"),
        _fk("group_syncs", "group_id", "workspace_groups", "CASCADE"),
        _fk("group_syncs", "publisher_workspace_id", "workspaces", "SET NULL"),
        _fk("group_syncs", "target_workspace_id", "workspaces", "SET NULL"),
        sa.PrimaryKeyConstraint("sync_id", name=op.f("pk_group_syncs")),
        **_MYSQL,
    )
    for column in ("group_id", "publisher_workspace_id", "target_workspace_id"):
        op.create_index(op.f(f"ix_group_syncs_{column}"), "group_syncs", [column])
    op.create_table(
        "home_versions",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", app.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", name=op.f("pk_home_versions")),
        **_MYSQL,
    )


def downgrade() -> None:
    op.drop_table("home_versions")
    op.drop_table("group_syncs")
    op.drop_table("group_join_failures")
    op.drop_table("workspace_group_members")
    op.drop_table("workspace_groups")
