"""Initial schema: workspaces, syncs, message map, outbox, claims, directory, Matrix, peers.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 23:49:16.893805
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.store.models

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instance_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("private_key_enc", sa.Text(), nullable=False),
        sa.Column("created_at", app.store.models.UTCDateTime(), nullable=False),
        sa.Column("retired_at", app.store.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instance_keys")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    op.create_table(
        "instance_settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", app.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_instance_settings")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    op.create_table(
        "matrix_ghosts",
        sa.Column("mxid", sa.String(length=255), nullable=False),
        sa.Column("remote_ref", sa.String(length=255), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=True),
        sa.Column("avatar_url", sa.String(length=1024), nullable=True),
        sa.Column("avatar_mxc", sa.String(length=255), nullable=True),
        sa.Column("registered", sa.Boolean(), nullable=False),
        sa.Column("updated_at", app.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("mxid", name=op.f("pk_matrix_ghosts")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    with op.batch_alter_table("matrix_ghosts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_matrix_ghosts_remote_ref"), ["remote_ref"], unique=False
        )

    op.create_table(
        "oauth_states",
        sa.Column("state", sa.String(length=128), nullable=False),
        sa.Column("expires_at", app.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("state", name=op.f("pk_oauth_states")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    with op.batch_alter_table("oauth_states", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oauth_states_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "peers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=1024), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", app.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_peers")),
        sa.UniqueConstraint("instance_id", name=op.f("uq_peers_instance_id")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    op.create_table(
        "processed_events",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("created_at", app.store.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", app.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_processed_events")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    with op.batch_alter_table("processed_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_processed_events_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "syncs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("allow_broadcast", sa.Boolean(), nullable=False),
        sa.Column("created_at", app.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_syncs")),
        sa.UniqueConstraint("name", name=op.f("uq_syncs_name")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    op.create_table(
        "workspaces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("enterprise_id", sa.String(length=32), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=True),
        sa.Column("icon_url", sa.String(length=1024), nullable=True),
        sa.Column("bot_user_id", sa.String(length=32), nullable=True),
        sa.Column("bot_id", sa.String(length=32), nullable=True),
        sa.Column("app_id", sa.String(length=32), nullable=True),
        sa.Column("bot_token_enc", sa.Text(), nullable=True),
        sa.Column("bot_refresh_token_enc", sa.Text(), nullable=True),
        sa.Column("bot_token_expires_at", app.store.models.UTCDateTime(), nullable=True),
        sa.Column("app_token_enc", sa.Text(), nullable=True),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("installed_by_user_id", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("deleted_at", app.store.models.UTCDateTime(), nullable=True),
        sa.Column("created_at", app.store.models.UTCDateTime(), nullable=False),
        sa.Column("updated_at", app.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspaces")),
        sa.UniqueConstraint("team_id", name=op.f("uq_workspaces_team_id")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workspaces_deleted_at"), ["deleted_at"], unique=False)

    op.create_table(
        "directory_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("display_name", sa.String(length=255), nullable=False),
        sa.Column("real_name", sa.String(length=255), nullable=False),
        sa.Column("normalized_name", sa.String(length=255), nullable=False),
        sa.Column("avatar_url", sa.String(length=1024), nullable=True),
        sa.Column("is_bot", sa.Boolean(), nullable=False),
        sa.Column("updated_at", app.store.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_directory_users_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_users")),
        sa.UniqueConstraint(
            "workspace_id", "user_id", name=op.f("uq_directory_users_workspace_id_user_id")
        ),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    with op.batch_alter_table("directory_users", schema=None) as batch_op:
        batch_op.create_index("ix_directory_users_email", ["workspace_id", "email"], unique=False)
        batch_op.create_index(
            "ix_directory_users_name", ["workspace_id", "normalized_name"], unique=False
        )

    op.create_table(
        "posts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("sync_id", sa.Integer(), nullable=False),
        sa.Column("source_endpoint", sa.String(length=255), nullable=False),
        sa.Column("source_native_id", sa.String(length=255), nullable=False),
        sa.Column("thread_post_id", sa.String(length=32), nullable=True),
        sa.Column("author_name", sa.String(length=255), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("created_at", app.store.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sync_id"], ["syncs.id"], name=op.f("fk_posts_sync_id_syncs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_posts")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_posts_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_posts_sync_id"), ["sync_id"], unique=False)

    op.create_table(
        "sync_endpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sync_id", sa.Integer(), nullable=False),
        sa.Column("endpoint", sa.String(length=255), nullable=False),
        sa.Column("network", sa.String(length=16), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", app.store.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sync_id"],
            ["syncs.id"],
            name=op.f("fk_sync_endpoints_sync_id_syncs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_sync_endpoints_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_endpoints")),
        sa.UniqueConstraint("endpoint", name=op.f("uq_sync_endpoints_endpoint")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    with op.batch_alter_table("sync_endpoints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_endpoints_sync_id"), ["sync_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_sync_endpoints_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "user_mappings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_workspace_id", sa.Integer(), nullable=False),
        sa.Column("source_user_id", sa.String(length=32), nullable=False),
        sa.Column("target_workspace_id", sa.Integer(), nullable=False),
        sa.Column("target_user_id", sa.String(length=32), nullable=True),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("matched_at", app.store.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", app.store.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["source_workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_user_mappings_source_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["target_workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_user_mappings_target_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_mappings")),
        sa.UniqueConstraint(
            "source_workspace_id",
            "source_user_id",
            "target_workspace_id",
            name=op.f("uq_user_mappings_source_workspace_id_source_user_id_target_workspace_id"),
        ),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    with op.batch_alter_table("user_mappings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_user_mappings_target_workspace_id"),
            ["target_workspace_id"],
            unique=False,
        )

    op.create_table(
        "message_map",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("post_id", sa.String(length=32), nullable=False),
        sa.Column("endpoint", sa.String(length=255), nullable=False),
        sa.Column("native_id", sa.String(length=255), nullable=False),
        sa.Column("thread_native_id", sa.String(length=255), nullable=True),
        sa.Column("is_source", sa.Boolean(), nullable=False),
        sa.Column("created_at", app.store.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["posts.id"],
            name=op.f("fk_message_map_post_id_posts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_map")),
        sa.UniqueConstraint(
            "endpoint", "native_id", name=op.f("uq_message_map_endpoint_native_id")
        ),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    with op.batch_alter_table("message_map", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_message_map_post_id"), ["post_id"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("uid", sa.String(length=32), nullable=False),
        sa.Column("sync_id", sa.Integer(), nullable=True),
        sa.Column("post_id", sa.String(length=32), nullable=True),
        sa.Column("target_endpoint", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", app.store.models.UTCDateTime(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("outcome_unknown", sa.Boolean(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", app.store.models.UTCDateTime(), nullable=True),
        sa.Column("source_time", app.store.models.UTCDateTime(), nullable=True),
        sa.Column("created_at", app.store.models.UTCDateTime(), nullable=False),
        sa.Column("delivered_at", app.store.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name=op.f("fk_outbox_post_id_posts"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["sync_id"], ["syncs.id"], name=op.f("fk_outbox_sync_id_syncs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("uid", name=op.f("uq_outbox_uid")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_delivered_at"), ["delivered_at"], unique=False)
        batch_op.create_index("ix_outbox_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_post_id"), ["post_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_sync_id"), ["sync_id"], unique=False)
        batch_op.create_index("ix_outbox_target_order", ["target_endpoint", "id"], unique=False)

    op.create_table(
        "reactions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.String(length=32), nullable=False),
        sa.Column("emoji", sa.String(length=128), nullable=False),
        sa.Column("actor", sa.String(length=319), nullable=False),
        sa.Column("source_endpoint", sa.String(length=255), nullable=False),
        sa.Column("created_at", app.store.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name=op.f("fk_reactions_post_id_posts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reactions")),
        sa.UniqueConstraint(
            "post_id", "emoji", "actor", name=op.f("uq_reactions_post_id_emoji_actor")
        ),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )


def downgrade() -> None:
    # Dropping a table drops its indexes; dropping them first trips MySQL's FK index rule.
    op.drop_table("reactions")
    op.drop_table("outbox")
    op.drop_table("message_map")
    op.drop_table("user_mappings")
    op.drop_table("sync_endpoints")
    op.drop_table("posts")
    op.drop_table("directory_users")
    op.drop_table("workspaces")
    op.drop_table("syncs")
    op.drop_table("processed_events")
    op.drop_table("peers")
    op.drop_table("oauth_states")
    op.drop_table("matrix_ghosts")
    op.drop_table("instance_settings")
    op.drop_table("instance_keys")
