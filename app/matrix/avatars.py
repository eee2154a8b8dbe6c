"""Matrix authors going elsewhere: display names, and avatars Slack can fetch.

Slack fetches ``icon_url`` itself, but homeserver media needs authentication, so avatars are
served through a public route of our app that proxies the homeserver's authenticated media.
Each URL carries an HMAC of the media id keyed by the hs_token, so the route serves only what
we handed out and cannot be used as an open proxy of the homeserver's media.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

from mautrix.types import UserID
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.core.endpoints import Endpoint
from app.core.events import Author
from app.errors import RemoteError
from app.matrix.homeserver import Homeserver, matrix_errors

log = logging.getLogger("syncbot.matrix.avatars")

ROUTE = "/avatars/matrix/{server}/{media_id}"
PROFILE_TTL = 600.0


class AvatarProxy:
    """Signs public avatar URLs and serves them from the homeserver's media repository."""

    def __init__(self, homeserver: Homeserver, *, key: str, public_url: str | None) -> None:
        self._hs = homeserver
        self._key = key.encode()
        self._public = public_url.rstrip("/") if public_url else None

    def _sig(self, server: str, media_id: str) -> str:
        mac = hmac.new(self._key, f"avatar:{server}/{media_id}".encode(), hashlib.sha256)
        return mac.hexdigest()[:32]

    def public_url(self, mxc: str | None) -> str | None:
        """The public URL of ``mxc://server/id``; None without a public base URL."""
        if not mxc or not mxc.startswith("mxc://") or self._public is None:
            return None
        server, _, media_id = mxc[len("mxc://") :].partition("/")
        if not server or not media_id or "/" in media_id:
            return None
        sig = self._sig(server, media_id)
        return f"{self._public}/avatars/matrix/{server}/{media_id}?sig={sig}"

    async def endpoint(self, request: Request) -> Response:
        server = request.path_params["server"]
        media_id = request.path_params["media_id"]
        given = request.query_params.get("sig", "")
        if not hmac.compare_digest(given.encode(), self._sig(server, media_id).encode()):
            return JSONResponse({"error": "not found"}, status_code=404)
        try:
            data, mime = await self._hs.download(server, media_id)
        except RemoteError as exc:
            log.warning("avatar proxy failed", extra={"error": str(exc)})
            status = 404 if exc.status == 404 else 502
            return JSONResponse({"error": "unavailable"}, status_code=status)
        if not mime.startswith("image/"):
            return JSONResponse({"error": "not an image"}, status_code=404)
        return Response(data, media_type=mime, headers={"Cache-Control": "public, max-age=86400"})


class MatrixAuthors:
    """The core's AuthorResolver for Matrix users: profile name and a fetchable avatar."""

    def __init__(self, homeserver: Homeserver, avatars: AvatarProxy) -> None:
        self._hs = homeserver
        self._avatars = avatars
        self._cache: dict[str, tuple[float, str | None, str | None]] = {}

    async def resolve(self, source: Endpoint, author: Author) -> Author:
        user_id = author.native_id or ""
        if not user_id.startswith("@"):
            return author
        cached = self._cache.get(user_id)
        if cached and time.monotonic() - cached[0] < PROFILE_TTL:
            _, name, mxc = cached
        else:
            async with matrix_errors("profile lookup"):
                profile = await self._hs.bot.get_profile(UserID(user_id))
            name = profile.displayname if profile else None
            mxc = str(profile.avatar_url) if profile and profile.avatar_url else None
            self._cache[user_id] = (time.monotonic(), name, mxc)
        return Author(
            name=author.name or name or user_id[1:].partition(":")[0],
            native_id=author.native_id,
            avatar_url=author.avatar_url or self._avatars.public_url(mxc),
            origin=author.origin,
        )
