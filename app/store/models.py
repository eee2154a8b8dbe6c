"""SQLAlchemy 2 models of the whole sync domain.

The schema itself is owned by the Alembic revisions in ``app/store/migrations``; these models must
match them (a test compares the migrated schema with this metadata on every backend).

Foreign keys say on purpose what happens on delete:
* a sync owns its endpoints, posts, message-map rows and outbox rows (CASCADE);
* a workspace owns its directory and mappings (CASCADE) but a sync endpoint only *refers* to a
  workspace: purging a workspace removes its endpoints (CASCADE) and leaves the sync to others;
* an outbox row keeps its history when its post goes away (SET NULL), so dead deliveries stay
  visible.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# MySQL/MariaDB tables must be utf8mb4 or emoji are rejected.
MYSQL_TABLE = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored as naive UTC (MySQL has no time zones) and read back aware.

    MySQL ``DATETIME`` drops fractions unless asked for them; outbox ordering needs them.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; use datetime.now(UTC)")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


# Long enough for any endpoint string (slack:T/C, matrix:!room:server, peer:...), and short
# enough that a two-column unique index stays under InnoDB's 3072-byte key limit in utf8mb4.
ENDPOINT = 255
NATIVE_ID = 255
ID = 32  # uuid4 hex


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON}
    # Every model here is mapped to one Table (DeclarativeBase types it as any FromClause):
    # what Core statements over ``Model.__table__`` need.
    __table__: ClassVar[Table]


class Workspace(Base):
    """A Slack workspace the app is installed in (by OAuth or a bot token)."""

    __tablename__ = "workspaces"
    __table_args__ = (MYSQL_TABLE,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32), unique=True)
    enterprise_id: Mapped[str | None] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255), default="")
    domain: Mapped[str | None] = mapped_column(String(255))
    icon_url: Mapped[str | None] = mapped_column(String(1024))
    bot_user_id: Mapped[str | None] = mapped_column(String(32))
    bot_id: Mapped[str | None] = mapped_column(String(32))
    app_id: Mapped[str | None] = mapped_column(String(32))
    # Encrypted with TokenCipher; never plaintext.
    bot_token_enc: Mapped[str | None] = mapped_column(Text)
    bot_refresh_token_enc: Mapped[str | None] = mapped_column(Text)
    bot_token_expires_at: Mapped[datetime | None] = mapped_column()
    app_token_enc: Mapped[str | None] = mapped_column(Text)
    scopes: Mapped[str] = mapped_column(Text, default="")
    installed_by_user_id: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="active")
    deleted_at: Mapped[datetime | None] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Sync(Base):
    """A set of endpoints kept in step with one another."""

    __tablename__ = "syncs"
    __table_args__ = (MYSQL_TABLE,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    # Whether @here/@channel/@everyone may ping the other endpoints.
    allow_broadcast: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SyncEndpoint(Base):
    """One channel, room or peer channel taking part in a sync."""

    __tablename__ = "sync_endpoints"
    __table_args__ = (MYSQL_TABLE,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sync_id: Mapped[int] = mapped_column(ForeignKey("syncs.id", ondelete="CASCADE"), index=True)
    # A channel belongs to at most one sync: edits, deletes and reactions then resolve to one
    # post through the message map. Add endpoints to the sync instead of a second sync.
    endpoint: Mapped[str] = mapped_column(String(ENDPOINT), unique=True)
    network: Mapped[str] = mapped_column(String(16))
    workspace_id: Mapped[int | None] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Post(Base):
    """The canonical message every copy in a sync maps to."""

    __tablename__ = "posts"
    __table_args__ = (MYSQL_TABLE,)

    id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    sync_id: Mapped[int] = mapped_column(ForeignKey("syncs.id", ondelete="CASCADE"), index=True)
    source_endpoint: Mapped[str] = mapped_column(String(ENDPOINT))
    source_native_id: Mapped[str] = mapped_column(String(NATIVE_ID))
    thread_post_id: Mapped[str | None] = mapped_column(String(ID))
    author_name: Mapped[str] = mapped_column(String(255), default="")
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class MessageCopy(Base):
    """The message map: where each copy of a post lives, by (endpoint, native id)."""

    __tablename__ = "message_map"
    __table_args__ = (UniqueConstraint("endpoint", "native_id"), MYSQL_TABLE)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    post_id: Mapped[str] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    endpoint: Mapped[str] = mapped_column(String(ENDPOINT))
    native_id: Mapped[str] = mapped_column(String(NATIVE_ID))
    # Slack thread parent ts of this copy, so replies land in the right thread.
    thread_native_id: Mapped[str | None] = mapped_column(String(NATIVE_ID))
    is_source: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The copy's other native ids, which a delete must remove too: the file shares posted
    # with it (``file:F…`` on Slack, the file events on Matrix).
    parts: Mapped[list[str] | None] = mapped_column(JSON)


class Reaction(Base):
    """Who reacted with what on a post, so native reactions aggregate per emoji."""

    __tablename__ = "reactions"
    __table_args__ = (UniqueConstraint("post_id", "emoji", "actor"), MYSQL_TABLE)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[str] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    emoji: Mapped[str] = mapped_column(String(128))
    # "<endpoint>|<native user id>" of the person who reacted.
    actor: Mapped[str] = mapped_column(String(ENDPOINT + 64))
    source_endpoint: Mapped[str] = mapped_column(String(ENDPOINT))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProcessedEvent(Base):
    """A dedupe claim: an inbound event (Slack event_id, Matrix txn/event, peer request) seen."""

    __tablename__ = "processed_events"
    __table_args__ = (MYSQL_TABLE,)

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class Delivery(Base):
    """One outbox row: an event to apply to one target endpoint, durable until done."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_target_order", "target_endpoint", "id"),
        MYSQL_TABLE,
    )

    # Monotonic id: deliveries to one target are applied in id order.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    uid: Mapped[str] = mapped_column(String(ID), unique=True)
    sync_id: Mapped[int | None] = mapped_column(
        ForeignKey("syncs.id", ondelete="SET NULL"), index=True
    )
    post_id: Mapped[str | None] = mapped_column(
        ForeignKey("posts.id", ondelete="SET NULL"), index=True
    )
    target_endpoint: Mapped[str] = mapped_column(String(ENDPOINT))
    kind: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Set when an attempt's outcome is unknown: check the target before repeating.
    outcome_unknown: Mapped[bool] = mapped_column(Boolean, default=False)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    source_time: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(index=True)


class DirectoryUser(Base):
    """A user of a workspace as last seen, for names, avatars and mention mapping."""

    __tablename__ = "directory_users"
    __table_args__ = (
        UniqueConstraint("workspace_id", "user_id"),
        Index("ix_directory_users_email", "workspace_id", "email"),
        Index("ix_directory_users_name", "workspace_id", "normalized_name"),
        MYSQL_TABLE,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(255), default="")
    real_name: Mapped[str] = mapped_column(String(255), default="")
    normalized_name: Mapped[str] = mapped_column(String(255), default="")
    avatar_url: Mapped[str | None] = mapped_column(String(1024))
    is_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    # Their own workspace, when another organisation's (a Slack Connect channel's member).
    home_team_id: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class UserMapping(Base):
    """Who a user of one workspace is in another, with how and until when we believe it."""

    __tablename__ = "user_mappings"
    __table_args__ = (
        UniqueConstraint("source_workspace_id", "source_user_id", "target_workspace_id"),
        MYSQL_TABLE,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    source_user_id: Mapped[str] = mapped_column(String(32))
    target_workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    target_user_id: Mapped[str | None] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(16))  # email | name | manual | none
    matched_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column()


class MatrixGhost(Base):
    """A Matrix user in our namespace standing in for a remote author."""

    __tablename__ = "matrix_ghosts"
    __table_args__ = (MYSQL_TABLE,)

    mxid: Mapped[str] = mapped_column(String(255), primary_key=True)
    # "<endpoint network>:<team>/<user>" of the person the ghost represents.
    remote_ref: Mapped[str] = mapped_column(String(255), index=True)
    display_name: Mapped[str | None] = mapped_column(String(255))
    avatar_url: Mapped[str | None] = mapped_column(String(1024))
    avatar_mxc: Mapped[str | None] = mapped_column(String(255))
    registered: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class InstanceSetting(Base):
    """Small per-instance facts generated once and kept (e.g. the federation instance id)."""

    __tablename__ = "instance_settings"
    __table_args__ = (MYSQL_TABLE,)

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class InstanceKey(Base):
    """This instance's Ed25519 signing keys; the private half encrypted."""

    __tablename__ = "instance_keys"
    __table_args__ = (MYSQL_TABLE,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_key: Mapped[str] = mapped_column(Text)
    private_key_enc: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column()


class Peer(Base):
    """A federated syncbot instance we are paired with."""

    __tablename__ = "peers"
    __table_args__ = (MYSQL_TABLE,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str] = mapped_column(String(1024))
    public_key: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OAuthState(Base):
    """A one-time OAuth ``state`` value, consumed on the redirect."""

    __tablename__ = "oauth_states"
    __table_args__ = (MYSQL_TABLE,)

    state: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


# Feature modules register their tables on Base.metadata (Alembic compares against it).
from app.store import (  # noqa: E402
    models_federation,  # noqa: F401
    models_groups,  # noqa: F401
    models_health,  # noqa: F401
    models_matrix,  # noqa: F401
    models_presence,  # noqa: F401
)
