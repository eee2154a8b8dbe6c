"""A workspace's custom Slack emoji as images on Matrix, uploaded once.

Slack names custom emoji (``:partyparrot:``) in text and reactions; ``emoji.list`` maps each
name to an image URL (or ``alias:other``): https://api.slack.com/methods/emoji.list. An image is
downloaded under the egress policy (the same fetcher as avatars: size cap, no internal
addresses, image types only), uploaded to the media repository once, and its ``mxc://`` URI
kept in ``instance_settings`` under a hash of the URL, so no restart uploads it again.
Messages (new, edited and backfilled alike, through
:meth:`app.matrix.deliver.MatrixDeliverer.render`) show it as an ``<img data-mx-emoticon>`` (the
spec's custom emoji form; the body keeps ``:name:``), reactions use the ``mxc://`` URI as their
key with the shortcode alongside, as mautrix-slack does.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time

from sqlalchemy.orm import Session, sessionmaker

from app.errors import RemoteError, SyncbotError
from app.matrix.ghosts import AvatarFetcher
from app.matrix.homeserver import Homeserver, matrix_errors
from app.slack.workspaces import Workspaces
from app.store.instance_settings import read_setting
from app.store.models import InstanceSetting

log = logging.getLogger("syncbot.bridge.emoji")

LIST_TTL = 600.0  # seconds an emoji.list answer is reused
MAX_ALIAS_HOPS = 3


class SlackCustomEmoji:
    """``mxc(team, name)``: the uploaded image of a workspace's custom emoji, or None."""

    def __init__(
        self,
        homeserver: Homeserver,
        sessions: sessionmaker[Session],
        workspaces: Workspaces,
        fetch: AvatarFetcher,
    ) -> None:
        self._hs = homeserver
        self._sessions = sessions
        self._workspaces = workspaces
        self._fetch = fetch
        self._lists: dict[str, tuple[float, dict[str, str]]] = {}
        self._lock = asyncio.Lock()

    async def mxc(self, team: str, name: str) -> str | None:
        url = await self._url(team, name)
        if url is None:
            return None
        key = "emoji:" + hashlib.sha256(url.encode()).hexdigest()[:48]
        async with self._lock:  # one upload per image, even for two deliveries at once
            cached = await asyncio.to_thread(self._load, key)
            if cached is not None:
                return cached
            try:
                data, mime = await self._fetch(url)
                async with matrix_errors("emoji upload"):
                    mxc = str(await self._hs.bot.upload_media(data, mime_type=mime, filename=name))
            except Exception as exc:
                # The name still reaches Matrix as :name: text; the next use tries again.
                log.warning("custom emoji not uploaded", extra={"emoji": name, "error": str(exc)})
                return None
            await asyncio.to_thread(self._save, key, mxc)
            return mxc

    async def _url(self, team: str, name: str) -> str | None:
        table = await self._list(team)
        url = table.get(name)
        for _ in range(MAX_ALIAS_HOPS):
            if url is None or not url.startswith("alias:"):
                break
            url = table.get(url.removeprefix("alias:"))
        if url is None or not url.startswith("https://"):
            return None  # an alias of a standard emoji, or nothing
        return url

    async def _list(self, team: str) -> dict[str, str]:
        cached = self._lists.get(team)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        try:
            data = await self._workspaces.api(team).call("emoji.list")
        except (RemoteError, SyncbotError) as exc:
            log.info("emoji.list unavailable", extra={"team_id": team, "error": str(exc)})
            return cached[1] if cached else {}
        table = {str(k): str(v) for k, v in (data.get("emoji") or {}).items()}
        self._lists[team] = (time.monotonic() + LIST_TTL, table)
        return table

    def _load(self, key: str) -> str | None:
        return read_setting(self._sessions, key)

    def _save(self, key: str, mxc: str) -> None:
        with self._sessions() as s, s.begin():
            if s.get(InstanceSetting, key) is None:
                s.add(InstanceSetting(key=key, value=mxc))
