"""Health: the Socket Mode connection state per workspace.

Revision ID: 0003_health
Revises: 0001
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

import app.store.models

revision = "0003_health"
down_revision = "0001"
branch_labels = ("health",)
depends_on = None

# Table options for MySQL, passed to create_table as keyword arguments.
_MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}


def upgrade() -> None:
    op.create_table(
        "socket_connections",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("detail", sa.String(length=255), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("last_event_at", app.store.models.UTCDateTime(), nullable=True),
        sa.Column("connected_at", app.store.models.UTCDateTime(), nullable=True),
        sa.Column("updated_at", app.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", name=op.f("pk_socket_connections")),
        **_MYSQL,
    )


def downgrade() -> None:
    op.drop_table("socket_connections")
