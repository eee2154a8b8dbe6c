"""The workspace a directory user belongs to, when it is not the one that looked them up.

A member of another organisation in a Slack Connect channel is seen through the channel's
workspace, but is theirs: ``users.info`` names their own ``team_id``, kept here so a restart's
cached profile still says whose ghost they are.

Revision ID: 0012_directory_home_team
Revises: 0011_matrix_puppets
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_directory_home_team"
down_revision = "0011_matrix_puppets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("directory_users") as batch:
        batch.add_column(sa.Column("home_team_id", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("directory_users") as batch:
        batch.drop_column("home_team_id")
