"""Keep-alive HTTP sessions to Slack for the loops that live long enough to reuse them.

slack_sdk opens (and closes) an aiohttp session — a TCP and TLS handshake — for every call unless
it is given one. An aiohttp session belongs to one event loop, and one left open when its loop
ends is reported as a leak, so sessions are opt-in: a long-lived loop (the worker of
``syncbot serve``) opens one on start and closes it on stop; short-lived loops (the maintenance
tick's ``asyncio.run``) keep the per-call sessions.

Beside the aiohttp session, an opened loop gets a lean HTTP/1.1 client (:mod:`app.slack.http1`)
for the delivery hot path's direct JSON requests; both open and close together.
"""

from __future__ import annotations

import asyncio

import aiohttp

from app.slack.http1 import KEEPALIVE_SECONDS, MAX_CONNECTIONS, Http1Client


class HttpPool:
    def __init__(self) -> None:
        self._sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}
        self._lean: dict[asyncio.AbstractEventLoop, Http1Client] = {}

    def session(self) -> aiohttp.ClientSession | None:
        """The running loop's pooled session, if it opened one."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        session = self._sessions.get(loop)
        return session if session is not None and not session.closed else None

    def lean(self) -> Http1Client | None:
        """The running loop's lean keep-alive client, if it opened its session."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        client = self._lean.get(loop)
        return client if client is not None and not client.closed else None

    async def open(self) -> None:
        """Give the running loop a pooled session and lean client (idempotent)."""
        loop = asyncio.get_running_loop()
        if self.session() is None:
            # Idle connections are closed by aiohttp after KEEPALIVE_SECONDS, well before
            # Slack's side would drop them.
            connector = aiohttp.TCPConnector(
                limit=MAX_CONNECTIONS, keepalive_timeout=KEEPALIVE_SECONDS
            )
            self._sessions[loop] = aiohttp.ClientSession(connector=connector)
        if self.lean() is None:
            self._lean[loop] = Http1Client()

    async def close(self) -> None:
        """Close the running loop's pooled session and lean client."""
        loop = asyncio.get_running_loop()
        session = self._sessions.pop(loop, None)
        lean = self._lean.pop(loop, None)
        if lean is not None:
            await lean.close()
        if session is not None:
            await session.close()
