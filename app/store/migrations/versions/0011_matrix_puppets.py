"""``login token``: a Matrix user's Slack user token (double puppeting, their own DMs), and
the kind of a login dialogue.

Revision ID: 0011_matrix_puppets
Revises: 0010_login_dialogues
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.store.models

revision = "0011_matrix_puppets"
down_revision = "0010_login_dialogues"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "matrix_puppets",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("slack_user_id", sa.String(length=32), nullable=False),
        sa.Column("token_enc", sa.Text(), nullable=False),
        sa.Column("created_at", app.store.models.UTCDateTime(), nullable=False),
        sa.Column("updated_at", app.store.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["matrix_users.mxid"],
            name=op.f("fk_matrix_puppets_user_id_matrix_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "team_id", name=op.f("pk_matrix_puppets")),
        sa.UniqueConstraint("team_id", "slack_user_id", name="uq_matrix_puppet_slack_user"),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    with op.batch_alter_table("matrix_login_dialogues") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=16), server_default="app", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("matrix_login_dialogues") as batch:
        batch.drop_column("kind")
    op.drop_table("matrix_puppets")
