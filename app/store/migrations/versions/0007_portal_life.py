"""Matrix portal life: logged-in users and their workspaces, invites we sent, room avatars.

Revision ID: 0007_portal_life
Revises: 0005_merge_features
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

import app.store.models

revision = "0007_portal_life"
down_revision = "0005_merge_features"
branch_labels = None
depends_on = None

# Table options for MySQL, passed to create_table as keyword arguments.
_MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}


def upgrade() -> None:
    with op.batch_alter_table("matrix_portals") as batch:
        batch.add_column(sa.Column("avatar_source", sa.String(length=1024), nullable=True))
        batch.add_column(sa.Column("avatar_mxc", sa.String(length=255), nullable=True))
    op.create_table(
        "matrix_users",
        sa.Column("mxid", sa.String(length=255), nullable=False),
        sa.Column("management_room", sa.String(length=255), nullable=True),
        sa.Column("created_at", app.store.models.UTCDateTime(), nullable=False),
        sa.Column("updated_at", app.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("mxid", name=op.f("pk_matrix_users")),
        **_MYSQL,
    )
    op.create_table(
        "matrix_logins",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", app.store.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["matrix_users.mxid"],
            name=op.f("fk_matrix_logins_user_id_matrix_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "team_id", name=op.f("pk_matrix_logins")),
        **_MYSQL,
    )
    op.create_index(op.f("ix_matrix_logins_team_id"), "matrix_logins", ["team_id"], unique=False)
    op.create_table(
        "matrix_portal_invites",
        sa.Column("endpoint", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("membership", sa.String(length=16), nullable=False),
        sa.Column("created_at", app.store.models.UTCDateTime(), nullable=False),
        sa.Column("updated_at", app.store.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint"],
            ["matrix_portals.endpoint"],
            name=op.f("fk_matrix_portal_invites_endpoint_matrix_portals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("endpoint", "user_id", name=op.f("pk_matrix_portal_invites")),
        **_MYSQL,
    )


def downgrade() -> None:
    op.drop_table("matrix_portal_invites")
    op.drop_index(op.f("ix_matrix_logins_team_id"), table_name="matrix_logins")
    op.drop_table("matrix_logins")
    op.drop_table("matrix_users")
    with op.batch_alter_table("matrix_portals") as batch:
        batch.drop_column("avatar_mxc")
        batch.drop_column("avatar_source")
