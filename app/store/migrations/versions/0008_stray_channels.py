"""Merge the App Home and portal-life branches; channels the bot is in without a sync.

Revision ID: 0008_stray_channels
Revises: 0006_groups, 0007_portal_life
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.store.models

revision = "0008_stray_channels"
down_revision = ("0006_groups", "0007_portal_life")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stray_channels",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("joined_at", app.store.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_stray_channels_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "channel_id", name=op.f("pk_stray_channels")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )


def downgrade() -> None:
    op.drop_table("stray_channels")
