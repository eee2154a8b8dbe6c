"""Matrix bridge: portals, processed appservice transactions, tracked reactions.

Revision ID: 0002_matrix
Revises: 0001
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

import app.store.models

revision = "0002_matrix"
down_revision = "0001"
branch_labels = ("matrix",)
depends_on = None

# Table options for MySQL, passed to create_table as keyword arguments.
_MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}


def upgrade() -> None:
    op.create_table(
        "matrix_portals",
        sa.Column("endpoint", sa.String(length=255), nullable=False),
        sa.Column("room_id", sa.String(length=255), nullable=True),
        sa.Column("alias", sa.String(length=255), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("topic", sa.String(length=1024), nullable=True),
        sa.Column("created_at", app.store.models.UTCDateTime(), nullable=False),
        sa.Column("updated_at", app.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint", name=op.f("pk_matrix_portals")),
        sa.UniqueConstraint("room_id", name=op.f("uq_matrix_portals_room_id")),
        **_MYSQL,
    )
    op.create_table(
        "matrix_transactions",
        sa.Column("txn_id", sa.String(length=255), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("processed_at", app.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("txn_id", name=op.f("pk_matrix_transactions")),
        **_MYSQL,
    )
    op.create_index(
        op.f("ix_matrix_transactions_processed_at"),
        "matrix_transactions",
        ["processed_at"],
        unique=False,
    )
    op.create_table(
        "matrix_reactions",
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.Column("target_event_id", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("sender", sa.String(length=255), nullable=False),
        sa.Column("ours", sa.Boolean(), nullable=False),
        sa.Column("created_at", app.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_matrix_reactions")),
        sa.UniqueConstraint(
            "room_id", "target_event_id", "key", "sender", name="uq_matrix_reaction"
        ),
        **_MYSQL,
    )


def downgrade() -> None:
    op.drop_table("matrix_reactions")
    op.drop_index(op.f("ix_matrix_transactions_processed_at"), table_name="matrix_transactions")
    op.drop_table("matrix_transactions")
    op.drop_table("matrix_portals")
