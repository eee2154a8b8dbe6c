"""Ghost users: the Matrix accounts standing in for Slack (and other remote) authors.

A ghost is registered on first need; its display name and avatar follow the author's profile.
The avatar is uploaded to the media repository once and again only when the source URL
changes — the ``matrix_ghosts`` row remembers what was last applied, so restarts do not
re-upload.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from mautrix.types import ContentURI
from sqlalchemy.orm import Session, sessionmaker

from app.core.endpoints import Endpoint
from app.core.events import Author
from app.egress import EgressPolicy
from app.errors import RemoteError
from app.matrix.homeserver import Homeserver, matrix_errors
from app.store.models import MatrixGhost

log = logging.getLogger("syncbot.matrix.ghosts")

MAX_AVATAR_BYTES = 5 * 1024 * 1024
AvatarFetcher = Callable[[str], Awaitable[tuple[bytes, str]]]


def http_avatar_fetcher(
    policy: EgressPolicy | None = None, *, time_limit: float = 15.0
) -> AvatarFetcher:
    """Download an avatar image under the egress policy.

    Avatar URLs come from anyone who posts (a peer's ``author.avatar_url``, a Slack
    ``bot_message``'s ``icons``), and the bytes end up on the homeserver: without the policy
    this reads loopback and internal services for them.
    """
    egress = policy or EgressPolicy()

    async def fetch(url: str) -> tuple[bytes, str]:
        data = await egress.fetch(url, max_bytes=MAX_AVATAR_BYTES, time_limit=time_limit)
        return data, _image_type(data)

    return fetch


def _image_type(data: bytes) -> str:
    # The type comes from the bytes, not from what the remote server claims.
    for magic, mime in (
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
    ):
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise RemoteError("avatar is not a PNG, JPEG, GIF or WebP image", network="http")


def ghost_display_name(author: Author, *, left: bool = False) -> str:
    """``Ada (Acme)``; ``Ada (left Acme)`` once their account left the workspace."""
    name = author.name or "someone"
    if left:
        return f"{name} (left {author.origin})" if author.origin else f"{name} (left)"
    return f"{name} ({author.origin})" if author.origin else name


class Ghosts:
    """Registers ghosts and keeps their profiles in step with their authors."""

    def __init__(
        self,
        homeserver: Homeserver,
        sessions: sessionmaker[Session],
        *,
        fetch_avatar: AvatarFetcher | None = None,
    ) -> None:
        self._hs = homeserver
        self._sessions = sessions
        self._fetch_avatar = fetch_avatar or http_avatar_fetcher()
        # One profile update per ghost at a time: two deliveries by one author race otherwise.
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def fetch_avatar(self) -> AvatarFetcher:
        """How avatar images are downloaded (portals use it for room avatars too)."""
        return self._fetch_avatar

    def mxid_for(self, source: Endpoint, author: Author) -> str:
        return self._hs.ids.ghost_for(source, author.native_id)

    async def known(self, mxid: str) -> bool:
        """Whether the ghost ``mxid`` was ever registered (it stands in some room)."""
        row = await asyncio.to_thread(self._load, mxid)
        return bool(row and row.registered)

    async def ensure(self, source: Endpoint, author: Author) -> str:
        """Make sure the ghost for ``author`` exists with their current name and avatar.

        Returns:
            The ghost's user id.

        Raises:
            RemoteError: the homeserver refused or failed registration or the profile update.
        """
        mxid = self.mxid_for(source, author)
        await self.update(mxid, f"{source.network}:{author.native_id or ''}", author)
        return mxid

    async def update(self, mxid: str, ref: str, author: Author, *, left: bool = False) -> None:
        """Register ``mxid`` if needed and apply ``author``'s name and avatar to it.

        Args:
            ref: the remote account it stands for (``slack:T1/U1``), remembered with it.
            left: that account left (was deactivated in) its workspace; the name says so.
        """
        lock = self._locks.setdefault(mxid, asyncio.Lock())
        async with lock:
            row = await asyncio.to_thread(self._load, mxid)
            intent = self._hs.intent(mxid)
            registered = bool(row and row.registered)
            if not registered:
                async with matrix_errors("ghost registration"):
                    await intent.ensure_registered()
            name = ghost_display_name(author, left=left)
            name_changed = row is None or row.display_name != name
            if name_changed:
                async with matrix_errors("ghost display name"):
                    await intent.set_displayname(name, check_current=False)
            avatar_url = row.avatar_url if row else None
            avatar_mxc = row.avatar_mxc if row else None
            if author.avatar_url and author.avatar_url != avatar_url:
                uploaded = await self._upload_avatar(mxid, author.avatar_url)
                if uploaded is not None:
                    avatar_url, avatar_mxc = author.avatar_url, uploaded
            if not registered or name_changed or row is None or row.avatar_mxc != avatar_mxc:
                await asyncio.to_thread(
                    self._save,
                    mxid,
                    ref,
                    name,
                    avatar_url,
                    avatar_mxc,
                )

    async def _upload_avatar(self, mxid: str, url: str) -> str | None:
        try:
            data, mime = await self._fetch_avatar(url)
        except Exception as exc:
            # A missing avatar must not hold the message back; the next post tries again.
            log.warning("avatar fetch failed", extra={"ghost": mxid, "error": str(exc)})
            return None
        intent = self._hs.intent(mxid)
        async with matrix_errors("avatar upload"):
            mxc = await intent.upload_media(data, mime_type=mime, filename="avatar")
            await intent.set_avatar_url(ContentURI(mxc), check_current=False)
        return str(mxc)

    def _load(self, mxid: str) -> MatrixGhost | None:
        with self._sessions() as s:
            row = s.get(MatrixGhost, mxid)
            if row is not None:
                s.expunge(row)
            return row

    def _save(
        self, mxid: str, ref: str, name: str, avatar_url: str | None, avatar_mxc: str | None
    ) -> None:
        with self._sessions() as s, s.begin():
            row = s.get(MatrixGhost, mxid)
            if row is None:
                row = MatrixGhost(mxid=mxid, remote_ref=ref[:255])
                s.add(row)
            row.registered = True
            row.display_name = name[:255]
            row.avatar_url = avatar_url
            row.avatar_mxc = avatar_mxc
