"""The events that flow through a sync, normalized from every network.

Adapters build these from their own wire formats (``to_core``) and render them back
(``from_core``); the relay never sees a Slack or Matrix payload.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from app.core import richtext
from app.core.endpoints import Endpoint


class Kind(StrEnum):
    POST = "post"
    EDIT = "edit"
    DELETE = "delete"
    REACT = "react"
    UNREACT = "unreact"


class ChannelChange(StrEnum):
    RENAME = "rename"
    ARCHIVE = "archive"
    UNARCHIVE = "unarchive"


@dataclass(frozen=True, slots=True)
class Author:
    """Who wrote a post, as the other endpoints should show them."""

    name: str
    native_id: str | None = None
    avatar_url: str | None = None
    # Where they wrote it, shown beside the name ("Ada (Acme)"): workspace or server name.
    origin: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "native_id": self.native_id,
            "avatar_url": self.avatar_url,
            "origin": self.origin,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Author:
        return cls(
            name=str(data.get("name") or ""),
            native_id=data.get("native_id"),
            avatar_url=data.get("avatar_url"),
            origin=str(data.get("origin") or ""),
        )


@dataclass(frozen=True, slots=True)
class FileRef:
    """A file attached at the source, fetched by the target adapter when it delivers."""

    native_id: str
    name: str
    mimetype: str
    size: int
    url: str
    title: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "native_id": self.native_id,
            "name": self.name,
            "mimetype": self.mimetype,
            "size": self.size,
            "url": self.url,
            "title": self.title,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileRef:
        return cls(
            native_id=str(data["native_id"]),
            name=str(data["name"]),
            mimetype=str(data.get("mimetype") or "application/octet-stream"),
            size=int(data.get("size") or 0),
            url=str(data["url"]),
            title=data.get("title"),
        )


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class NewPost:
    """A message appeared at ``source`` (top level, or a reply when ``thread_native_id``)."""

    source: Endpoint
    native_id: str
    dedupe_key: str
    author: Author
    body: richtext.Node
    thread_native_id: str | None = None
    # A thread reply also sent to the channel (Slack ``thread_broadcast``).
    broadcast: bool = False
    files: tuple[FileRef, ...] = ()
    # A link to the thread parent at the source, for replies whose parent was never synced.
    parent_link: str | None = None
    occurred_at: datetime = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class EditPost:
    source: Endpoint
    native_id: str
    dedupe_key: str
    body: richtext.Node
    occurred_at: datetime = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class DeletePost:
    source: Endpoint
    native_id: str
    dedupe_key: str
    occurred_at: datetime = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class ReactionChange:
    """A reaction added (``added``) or removed on the message ``native_id`` at ``source``."""

    source: Endpoint
    native_id: str
    dedupe_key: str
    emoji: str
    actor: str
    added: bool
    actor_name: str = ""
    occurred_at: datetime = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class ChannelEvent:
    """The channel itself changed: renamed, archived, unarchived."""

    source: Endpoint
    dedupe_key: str
    change: ChannelChange
    name: str | None = None
    occurred_at: datetime = field(default_factory=_now)


InboundEvent = NewPost | EditPost | DeletePost | ReactionChange | ChannelEvent
