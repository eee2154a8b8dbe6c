"""Keep-alive HTTP sessions to Slack for the loops that live long enough to reuse them.

slack_sdk opens (and closes) an aiohttp session — a TCP and TLS handshake — for every call unless
it is given one. An aiohttp session belongs to one event loop, and one left open when its loop
ends is reported as a leak, so sessions are opt-in: a long-lived loop (the worker of
``syncbot serve``) opens one on start and closes it on stop; short-lived loops (the maintenance
tick's ``asyncio.run``) keep the per-call sessions.
"""

from __future__ import annotations

import asyncio

import aiohttp

# Connections to Slack kept open between calls; idle ones are closed by aiohttp after this long,
# well before Slack's side would drop them.
KEEPALIVE_SECONDS = 15.0
MAX_CONNECTIONS = 64


class HttpPool:
    def __init__(self) -> None:
        self._sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}

    def session(self) -> aiohttp.ClientSession | None:
        """The running loop's pooled session, if it opened one."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        session = self._sessions.get(loop)
        return session if session is not None and not session.closed else None

    async def open(self) -> None:
        """Give the running loop a pooled session (idempotent)."""
        loop = asyncio.get_running_loop()
        if self.session() is None:
            connector = aiohttp.TCPConnector(
                limit=MAX_CONNECTIONS, keepalive_timeout=KEEPALIVE_SECONDS
            )
            self._sessions[loop] = aiohttp.ClientSession(connector=connector)

    async def close(self) -> None:
        """Close the running loop's pooled session."""
        session = self._sessions.pop(asyncio.get_running_loop(), None)
        if session is not None:
            await session.close()
