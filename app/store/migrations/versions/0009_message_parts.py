"""The other native ids of a copy: its file shares (Slack file ids, Matrix file events).

Revision ID: 0009_message_parts
Revises: 0008_stray_channels
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_message_parts"
down_revision = "0008_stray_channels"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("message_map") as batch:
        batch.add_column(sa.Column("parts", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("message_map") as batch:
        batch.drop_column("parts")
