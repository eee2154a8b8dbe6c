"""``login app`` dialogues survive restarts and reach other instances (the token encrypted).

Revision ID: 0010_login_dialogues
Revises: 0009_message_parts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.store.models

revision = "0010_login_dialogues"
down_revision = "0009_message_parts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "matrix_login_dialogues",
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("bot_token_enc", sa.Text(), nullable=True),
        sa.Column("expires_at", app.store.models.UTCDateTime(), nullable=False),
        sa.Column("created_at", app.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("room_id", "user_id", name=op.f("pk_matrix_login_dialogues")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    op.create_index(
        op.f("ix_matrix_login_dialogues_expires_at"),
        "matrix_login_dialogues",
        ["expires_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_matrix_login_dialogues_expires_at"), table_name="matrix_login_dialogues"
    )
    op.drop_table("matrix_login_dialogues")
