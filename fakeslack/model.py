"""In-memory Slack state: workspaces, users, channels, messages, files, installations.

Everything here is plain data mutated only on the fake's event loop; ``wire()`` methods render
objects exactly as Slack's Web API returns them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

APP_ID = "A0FAKEAPP01"


@dataclass
class User:
    """A workspace member (human or bot user)."""

    id: str
    team_id: str
    name: str
    real_name: str = ""
    display_name: str = ""
    email: str | None = None
    is_admin: bool = False
    is_owner: bool = False
    is_bot: bool = False
    deleted: bool = False
    bot_id: str | None = None
    # A changed avatar gets a new URL, as Slack's image URLs carry the image's hash.
    avatar_version: str = ""

    def images(self) -> dict[str, str]:
        """Avatar URLs keyed as in Slack's profile (``image_24`` .. ``image_512``)."""
        base = f"https://avatars.slack-edge.test/{self.team_id}/{self.id}{self.avatar_version}"
        return {f"image_{n}": f"{base}_{n}.png" for n in (24, 32, 48, 72, 192, 512)}

    def profile(self) -> dict[str, Any]:
        """The ``profile`` object of ``users.info`` / ``users.profile.get``."""
        prof: dict[str, Any] = {
            "real_name": self.real_name or self.name,
            "real_name_normalized": self.real_name or self.name,
            "display_name": self.display_name,
            "display_name_normalized": self.display_name,
            "team": self.team_id,
            **self.images(),
        }
        if self.email and not self.is_bot:
            prof["email"] = self.email
        if self.bot_id:
            prof["bot_id"] = self.bot_id
            prof["api_app_id"] = APP_ID
        return prof

    def wire(self) -> dict[str, Any]:
        """The ``user`` object of ``users.info``."""
        return {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "deleted": self.deleted,
            "real_name": self.real_name or self.name,
            "is_admin": self.is_admin,
            "is_owner": self.is_owner,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1700000000,
            "profile": self.profile(),
        }


@dataclass
class FileObj:
    """An uploaded file (files v2)."""

    id: str
    team_id: str
    user: str
    name: str
    title: str
    mimetype: str
    content: bytes = b""
    uploaded: bool = False
    channels: list[str] = field(default_factory=list)
    base_url: str = ""
    # The size Slack reports, when a test needs one the fake should not hold in memory.
    reported_size: int | None = None

    def wire(self) -> dict[str, Any]:
        """The ``file`` object of ``files.info`` and message ``files`` arrays."""
        ext = self.name.rsplit(".", 1)[-1] if "." in self.name else ""
        url = f"{self.base_url}files-pri/{self.team_id}-{self.id}/{self.name}"
        return {
            "id": self.id,
            "created": 1700000000,
            "timestamp": 1700000000,
            "name": self.name,
            "title": self.title,
            "mimetype": self.mimetype,
            "filetype": ext or "binary",
            "pretty_type": ext.upper() or "Binary",
            "user": self.user,
            "user_team": self.team_id,
            "size": len(self.content) if self.reported_size is None else self.reported_size,
            "mode": "hosted",
            "is_external": False,
            "is_public": True,
            "url_private": url,
            "url_private_download": url.replace("/files-pri/", "/files-pri/dl/", 1),
            "permalink": f"https://fake.slack.test/files/{self.user}/{self.id}/{self.name}",
            "channels": list(self.channels),
        }


@dataclass(frozen=True)
class Upload:
    """A file a person attaches to a message (``post_message(files=[...])``).

    ``size`` overrides the size Slack reports (e.g. a file far too big to copy) while the fake
    holds only ``content``.
    """

    name: str
    content: bytes
    mimetype: str | None = None
    size: int | None = None


@dataclass
class Message:
    """One message in a channel (top-level or thread reply)."""

    ts: str
    channel: str
    text: str = ""
    user: str | None = None
    bot_id: str | None = None
    app_id: str | None = None
    username: str | None = None
    icons: dict[str, str] | None = None
    bot_profile: dict[str, Any] | None = None
    thread_ts: str | None = None
    reply_broadcast: bool = False
    subtype: str | None = None
    blocks: list[dict[str, Any]] | None = None
    attachments: list[dict[str, Any]] | None = None
    metadata: dict[str, Any] | None = None
    files: list[str] = field(default_factory=list)
    reactions: dict[str, list[str]] = field(default_factory=dict)
    replies: list[str] = field(default_factory=list)
    reply_users: list[str] = field(default_factory=list)
    edited: dict[str, str] | None = None
    deleted: bool = False
    team: str = ""

    def wire(
        self, files: dict[str, FileObj] | None = None, *, include_metadata: bool = True
    ) -> dict[str, Any]:
        """Render as in ``conversations.history`` (and event payloads)."""
        out: dict[str, Any] = {"type": "message", "ts": self.ts, "text": self.text}
        if self.subtype:
            out["subtype"] = self.subtype
        keys = ("user", "bot_id", "app_id", "username", "icons", "bot_profile", "blocks")
        for key in (*keys, "attachments"):
            value = getattr(self, key)
            if value:
                out[key] = value
        if self.team:
            out["team"] = self.team
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
            if self.thread_ts == self.ts:
                out["reply_count"] = len(self.replies)
                out["reply_users"] = list(dict.fromkeys(self.reply_users))
                out["reply_users_count"] = len(set(self.reply_users))
                out["latest_reply"] = self.replies[-1] if self.replies else self.ts
        if self.edited:
            out["edited"] = dict(self.edited)
        if self.metadata and include_metadata:
            out["metadata"] = self.metadata
        if self.files and files is not None:
            out["files"] = [files[f].wire() for f in self.files if f in files]
            out["upload"] = False
        reactions = [
            {"name": name, "users": list(users), "count": len(users)}
            for name, users in self.reactions.items()
            if users
        ]
        if reactions:
            out["reactions"] = reactions
        return out


@dataclass
class Channel:
    """A conversation (public or private channel, or an IM opened by ``conversations.open``)."""

    id: str
    name: str
    is_private: bool = False
    is_im: bool = False
    # A group DM (multi-person IM): private, named mpdm-a--b--c-1 by Slack.
    is_mpim: bool = False
    topic: str = ""
    purpose: str = ""
    members: list[str] = field(default_factory=list)
    is_archived: bool = False
    creator: str = ""
    messages: dict[str, Message] = field(default_factory=dict)
    # Slack Connect: the other workspaces this channel is shared with (the same object, with
    # the same id, sits in each of their channel maps).
    shared_teams: list[str] = field(default_factory=list)

    def wire(self, bot_user: str | None) -> dict[str, Any]:
        """Render as in ``conversations.info``."""
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": not self.is_private and not self.is_im,
            "is_group": self.is_private,
            "is_im": self.is_im,
            "is_mpim": self.is_mpim,
            "is_private": self.is_private or self.is_im,
            "is_archived": self.is_archived,
            "is_general": self.name == "general",
            "is_shared": bool(self.shared_teams),
            "is_ext_shared": bool(self.shared_teams),
            "is_org_shared": False,
            "created": 1700000000,
            "creator": self.creator,
            "is_member": bot_user in self.members if bot_user else False,
            "topic": {"value": self.topic, "creator": self.creator, "last_set": 0},
            "purpose": {"value": self.purpose, "creator": self.creator, "last_set": 0},
            "num_members": len(self.members),
        }
        if self.is_im:
            # An IM names the other person: https://api.slack.com/types/im
            out["user"] = next((m for m in self.members if m != bot_user), "")
        return out


@dataclass
class Installation:
    """The app installed into one workspace: its bot user and tokens.

    A user token acts through a view of the installation with ``as_user`` set: then
    ``bot_user_id`` is the member the token belongs to, ``bot_id`` is empty and ``scopes`` are
    the user scopes that member granted.
    """

    team_id: str
    bot_user_id: str
    bot_id: str
    bot_token: str
    scopes: list[str] = field(default_factory=list)
    refresh_token: str | None = None
    revoked: bool = False
    socket_mode: bool = False
    as_user: bool = False


@dataclass
class UserGrant:
    """A member's authorization of the app: a user token (``xoxp-``) and the user scopes it
    carries (https://docs.slack.dev/authentication/tokens#user)."""

    team_id: str
    user_id: str
    token: str
    scopes: list[str] = field(default_factory=list)
    revoked: bool = False


@dataclass
class Workspace:
    """A Slack team and everything in it."""

    id: str
    name: str
    domain: str
    icon: str = ""
    users: dict[str, User] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)
    emoji: dict[str, str] = field(default_factory=dict)
    files: dict[str, FileObj] = field(default_factory=dict)
    deleted_files: set[str] = field(default_factory=set)
    installation: Installation | None = None
    views: dict[str, dict[str, Any]] = field(default_factory=dict)

    def wire(self) -> dict[str, Any]:
        """Render as in ``team.info``."""
        icon = self.icon or f"https://avatars.slack-edge.test/team/{self.id}"
        return {
            "id": self.id,
            "name": self.name,
            "domain": self.domain,
            "email_domain": "",
            "url": f"https://{self.domain}.slack.test/",
            "icon": {f"image_{n}": f"{icon}_{n}.png" for n in (34, 44, 68, 88, 102, 132, 230)}
            | {"image_default": not self.icon},
        }


class TsClock:
    """Slack-format message timestamps: unique and strictly increasing across the fake.

    Slack's ``ts`` is the message's time (https://docs.slack.dev/messaging/retrieving-messages):
    it follows the wall clock, so an app may look a message up by ``oldest`` = a time it knows
    (when a post's answer was lost) and find it. A fixed ``start`` counts from there instead.
    """

    def __init__(self, start: int | None = None) -> None:
        self._fixed = start is not None
        self._last = (start or 0) * 1_000_000
        # The test thread and the fake's own loop both post: no two messages share a ts.
        self._lock = threading.Lock()

    def next(self) -> str:
        """Return the next ``"1700000000.000100"``-style timestamp."""
        now = 0 if self._fixed else time.time_ns() // 1000
        with self._lock:
            self._last = last = max(self._last + 1, now)
        return f"{last // 1_000_000}.{last % 1_000_000:06d}"
