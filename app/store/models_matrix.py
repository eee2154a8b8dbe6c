"""Tables of the Matrix bridge: portals, appservice transactions and reactions we track.

Ghost profiles live in ``matrix_ghosts`` (baseline schema); these tables add what the bridge
needs to be idempotent across restarts, since mautrix-python keeps all of it in memory.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.store.models import MYSQL_TABLE, Base, utcnow


class MatrixPortal(Base):
    """A Matrix room standing for a Slack channel (created by us, or linked by a user).

    ``state`` follows the seed's portal machine: pending -> creating -> active <-> archived;
    active/archived -> deleting, after which the row is removed (deleted). A row in
    ``creating`` with no room id is a creation that did not finish; it is retried rather than
    creating a second room.
    """

    __tablename__ = "matrix_portals"
    __table_args__ = (MYSQL_TABLE,)

    # The Slack channel endpoint (``slack:T/C``) the portal bridges.
    endpoint: Mapped[str] = mapped_column(String(255), primary_key=True)
    room_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    alias: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    name: Mapped[str | None] = mapped_column(String(255))
    topic: Mapped[str | None] = mapped_column(String(1024))
    # The room avatar: the workspace icon URL it was made from, and its mxc:// copy.
    avatar_source: Mapped[str | None] = mapped_column(String(1024))
    avatar_mxc: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MatrixUser(Base):
    """A Matrix user of the bridge (the seed's ``user`` table): who logged in, and where.

    ``management_room`` is the user's DM with the bridge bot, where `login app` ran: commands
    need no prefix there and the bridge's notices to that user go there.
    """

    __tablename__ = "matrix_users"
    __table_args__ = (MYSQL_TABLE,)

    mxid: Mapped[str] = mapped_column(String(255), primary_key=True)
    management_room: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MatrixLogin(Base):
    """A workspace a Matrix user logged in with `login app`: its channels get portals.

    Deleting the user (ON DELETE CASCADE) forgets their logins; `logout` deletes the
    workspace's rows.
    """

    __tablename__ = "matrix_logins"
    __table_args__ = (MYSQL_TABLE,)

    user_id: Mapped[str] = mapped_column(
        ForeignKey("matrix_users.mxid", ondelete="CASCADE"), primary_key=True
    )
    team_id: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MatrixPortalInvite(Base):
    """That we invited a Matrix user to a portal, and what they did with it.

    ``membership`` is invited, joined, left or declined (from the membership events the
    homeserver pushes). A row of any state means: never invite again — a restart or a later
    sync re-inviting people who left is the known complaint about bridges. Deleting the portal
    (ON DELETE CASCADE) forgets them, so a recreated portal invites afresh.
    """

    __tablename__ = "matrix_portal_invites"
    __table_args__ = (MYSQL_TABLE,)

    endpoint: Mapped[str] = mapped_column(
        ForeignKey("matrix_portals.endpoint", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    membership: Mapped[str] = mapped_column(String(16), default="invited")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MatrixTransaction(Base):
    """An appservice transaction the homeserver pushed and we fully processed."""

    __tablename__ = "matrix_transactions"
    __table_args__ = (MYSQL_TABLE,)

    txn_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    events: Mapped[int] = mapped_column(default=0)
    processed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class MatrixReaction(Base):
    """An ``m.reaction`` event: ours (sent for a remote reaction) or a Matrix user's.

    A redaction names only the event it removes, so both directions need this row: to redact
    our reaction on unreact, and to turn a user's redaction back into an unreact.
    """

    __tablename__ = "matrix_reactions"
    __table_args__ = (
        UniqueConstraint("room_id", "target_event_id", "key", "sender", name="uq_matrix_reaction"),
        MYSQL_TABLE,
    )

    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(255))
    target_event_id: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(128))
    sender: Mapped[str] = mapped_column(String(255))
    ours: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MatrixLoginDialogue(Base):
    """A ``login app`` dialogue in progress: who, in which DM, and the bot token so far.

    Kept in the database (the token encrypted, bound to its column) so that the answer to the
    next question is understood after a restart or by another instance; it expires after a
    few minutes and is deleted when the login ends either way.
    """

    __tablename__ = "matrix_login_dialogues"
    __table_args__ = (MYSQL_TABLE,)

    room_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    # What is being logged in: "app" (bot + app token) or "token" (a user token).
    kind: Mapped[str] = mapped_column(String(16), default="app", server_default="app")
    # Encrypted with TokenCipher (context "matrix_login.bot_token"); None until it is given.
    bot_token_enc: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MatrixPuppet(Base):
    """A Matrix user's Slack user token, from ``login token``: the Slack user they are.

    With it their own DMs and group DMs are bridged and what they write on Matrix reaches
    Slack as themselves (double puppeting). One Slack user is one Matrix user per workspace.
    Deleting the Matrix user (ON DELETE CASCADE) or ``logout`` forgets the token.
    """

    __tablename__ = "matrix_puppets"
    __table_args__ = (
        UniqueConstraint("team_id", "slack_user_id", name="uq_matrix_puppet_slack_user"),
        MYSQL_TABLE,
    )

    user_id: Mapped[str] = mapped_column(
        ForeignKey("matrix_users.mxid", ondelete="CASCADE"), primary_key=True
    )
    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    slack_user_id: Mapped[str] = mapped_column(String(32))
    # Encrypted with TokenCipher (context "matrix_puppet.user_token").
    token_enc: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
