"""Federation: pairing codes and request nonces.

Revision ID: 0004_federation
Revises: 0001
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

import app.store.models

revision = "0004_federation"
down_revision = "0001"
branch_labels = ("federation",)
depends_on = None

# Table options for MySQL, passed to create_table as keyword arguments.
_MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}


def upgrade() -> None:
    op.create_table(
        "federation_pairing_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("sync_id", sa.Integer(), nullable=False),
        sa.Column("anchor", sa.String(length=255), nullable=False),
        sa.Column("created_at", app.store.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", app.store.models.UTCDateTime(), nullable=False),
        sa.Column("used_at", app.store.models.UTCDateTime(), nullable=True),
        sa.Column("used_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["sync_id"],
            ["syncs.id"],
            name=op.f("fk_federation_pairing_codes_sync_id_syncs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_federation_pairing_codes")),
        **_MYSQL,
    )
    op.create_index(
        op.f("ix_federation_pairing_codes_sync_id"), "federation_pairing_codes", ["sync_id"]
    )
    op.create_index(
        op.f("ix_federation_pairing_codes_expires_at"), "federation_pairing_codes", ["expires_at"]
    )
    op.create_table(
        "federation_nonces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("expires_at", app.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_federation_nonces")),
        sa.UniqueConstraint("nonce", name=op.f("uq_federation_nonces_nonce")),
        **_MYSQL,
    )
    op.create_index(op.f("ix_federation_nonces_expires_at"), "federation_nonces", ["expires_at"])


def downgrade() -> None:
    op.drop_table("federation_nonces")
    op.drop_table("federation_pairing_codes")
