"""Socket Mode: ``apps.connections.open`` tickets, the ``/link/`` WebSocket, envelopes and acks.

Slack greets each connection with ``hello``, sends envelopes to one of the app's open connections
(up to 10), expects ``{"envelope_id": ...}`` acks within 3 s and re-sends unacked envelopes with
``retry_attempt`` + 1. ``disconnect`` frames warn of a close (``warning``/``refresh_requested``:
about 10 s of grace; ``link_disabled``: closes at once).
(https://docs.slack.dev/apis/events-api/using-socket-mode)

Each app-level token belongs to one app, and each app has its own hub: a SyncBot install where
every workspace brings its own app (and ``xapp-`` token) has one hub per workspace.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from .model import APP_ID


@dataclass
class SocketSettings:
    """Timings and limits of the Socket Mode link (Slack's defaults; shrink them in tests)."""

    ack_deadline: float = 3.0
    max_retries: int = 3
    disconnect_grace: float = 10.0
    max_connections: int = 10
    approximate_connection_time: int = 18060


@dataclass
class Connection:
    """One open WebSocket of the app."""

    id: int
    ws: web.WebSocketResponse
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    said_hello: bool = False


class SocketHub:
    """All Socket Mode connections of the app, envelope delivery and ack bookkeeping."""

    def __init__(self, settings: SocketSettings, team_id: str = "") -> None:
        self.settings = settings
        self.team_id = team_id
        self.connections: list[Connection] = []
        # Every socket ever accepted, greeted or not (tests check that abandoned ones closed).
        self.history: list[Connection] = []
        # For each greeted socket: how many of the app's sockets were still open at its hello.
        self.overlaps: list[int] = []
        # Test knob: this many next sockets are accepted but never greeted (a stuck Slack edge).
        self.silent = 0
        # Envelopes sent and neither acknowledged nor given up on.
        self.pending: set[str] = set()
        self.sent: list[dict[str, Any]] = []
        self.acks: list[dict[str, Any]] = []
        self._tickets: set[str] = set()
        self._ids = itertools.count(1)
        self._acked: dict[str, asyncio.Event] = {}
        self._rr = itertools.count()
        self._backlog: list[dict[str, Any]] = []
        self._connected = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def new_ticket(self) -> str:
        """A one-time ticket for ``ws://.../link/?ticket=...``."""
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        return ticket

    def has_ticket(self, ticket: str) -> bool:
        """Whether ``ticket`` is one of this hub's unused tickets."""
        return ticket in self._tickets

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The ``GET /link/`` WebSocket endpoint."""
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        self._tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = Connection(next(self._ids), ws)
        self.history.append(conn)
        if self.silent:
            self.silent -= 1
            try:
                async for _msg in ws:
                    pass
            finally:
                conn.closed.set()
            return ws
        self.overlaps.append(len(self.connections))
        self.connections.append(conn)
        conn.said_hello = True
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self.connections),
                "debug_info": {
                    "host": "applink-fake-1",
                    "build_number": 1,
                    "approximate_connection_time": self.settings.approximate_connection_time,
                },
                "connection_info": {"app_id": APP_ID},
            }
        )
        self._connected.set()
        backlog, self._backlog = self._backlog, []
        for frame in backlog:
            self._spawn(self._send_until_acked(frame))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_text(msg.data)
        finally:
            self._forget(conn)
        return ws

    def _on_text(self, data: str) -> None:
        try:
            frame = json.loads(data)
        except ValueError:
            return
        if isinstance(frame, dict) and "envelope_id" in frame:
            self.acks.append(frame)
            self.pending.discard(frame["envelope_id"])
            event = self._acked.get(frame["envelope_id"])
            if event is not None:
                event.set()

    def _forget(self, conn: Connection) -> None:
        if conn in self.connections:
            self.connections.remove(conn)
        conn.closed.set()
        if not self.connections:
            self._connected.clear()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def send(
        self, envelope_type: str, payload: dict[str, Any], accepts_response_payload: bool = False
    ) -> str:
        """Send an envelope to one open connection; retry until acked (runs on the loop).

        Returns:
            The ``envelope_id``.
        """
        envelope_id = str(uuid.uuid4())
        frame: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": envelope_type,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
            "retry_attempt": 0,
            "retry_reason": "",
        }
        self._acked[envelope_id] = asyncio.Event()
        self.pending.add(envelope_id)
        if not self.connections:
            self._backlog.append(frame)
        else:
            self._spawn(self._send_until_acked(frame))
        return str(frame["envelope_id"])

    async def _send_until_acked(self, frame: dict[str, Any]) -> None:
        acked = self._acked[frame["envelope_id"]]
        for attempt in range(self.settings.max_retries + 1):
            if not self.connections:
                await self._connected.wait()
            conn = self.connections[next(self._rr) % len(self.connections)]
            out = dict(frame, retry_attempt=attempt, retry_reason="timeout" if attempt else "")
            try:
                await conn.ws.send_json(out)
            except (ConnectionError, RuntimeError):
                self._forget(conn)
                continue
            self.sent.append(out)
            try:
                await asyncio.wait_for(acked.wait(), self.settings.ack_deadline)
                return
            except TimeoutError:
                continue
        self.pending.discard(frame["envelope_id"])

    async def disconnect(self, reason: str, connection: int | None = None) -> None:
        """Send ``{"type":"disconnect","reason":...}`` and close as Slack would."""
        for conn in self._select(connection):
            await conn.ws.send_json(
                {
                    "type": "disconnect",
                    "reason": reason,
                    "debug_info": {"host": "applink-fake-1"},
                }
            )
            grace = 0.0 if reason == "link_disabled" else self.settings.disconnect_grace
            self._spawn(self._close_later(conn, grace))

    async def _close_later(self, conn: Connection, grace: float) -> None:
        await asyncio.sleep(grace)
        await conn.ws.close()
        self._forget(conn)

    async def drop(self, connection: int | None = None) -> None:
        """Cut connections abruptly, without a close handshake."""
        for conn in self._select(connection):
            transport = conn.ws._req.transport if conn.ws._req else None
            if transport is not None:
                transport.abort()
            self._forget(conn)

    @property
    def hellos(self) -> int:
        """How many sockets were greeted with ``hello``."""
        return sum(1 for c in self.history if c.said_hello)

    def current(self) -> int | None:
        """Id of the newest open connection (the one a refreshing client just opened)."""
        return self.connections[-1].id if self.connections else None

    def _select(self, connection: int | None) -> list[Connection]:
        if connection is None:
            return list(self.connections)
        return [c for c in self.connections if c.id == connection]

    async def close(self) -> None:
        """Close every connection and cancel pending sends."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for conn in list(self.connections):
            await conn.ws.close()
            self._forget(conn)
