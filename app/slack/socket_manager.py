"""One Socket Mode client per workspace that has an app token, as a runtime worker."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from starlette.responses import Response

from app.slack.events_route import SlackEvents
from app.slack.socket_mode import SocketModeClient, SocketTimings
from app.slack.socket_state import ConnectionBoard, ConnectionState
from app.slack.workspaces import UnknownWorkspace, Workspaces

log = logging.getLogger("syncbot.slack.socket")


class SocketModeManager:
    """Starts, replaces and stops the Socket Mode clients of all workspaces.

    ``syncbot serve`` runs it as a runtime worker; the Matrix bridge's ``login app`` calls
    :meth:`connect` for a workspace that got an app token at run time.

    Args:
        workspaces: the installed workspaces (tokens decrypted on demand).
        events: the Slack events path shared with HTTP.
        board: where connection states are kept.
        timings: client tunables (tests shrink them).
        rng: jitter source, shared by all clients (seeded in tests).
        api_url: where ``apps.connections.open`` is called (default: the workspaces' Web API).
    """

    def __init__(
        self,
        *,
        workspaces: Workspaces,
        events: SlackEvents,
        board: ConnectionBoard,
        timings: SocketTimings | None = None,
        rng: random.Random | None = None,
        api_url: str | None = None,
    ) -> None:
        self._workspaces = workspaces
        self._api_url = api_url or workspaces.api_url
        self._events = events
        self.board = board
        self._timings = timings
        self._rng = rng or random.Random()
        self._clients: dict[str, SocketModeClient] = {}
        self._lock = asyncio.Lock()
        # Only a started manager (``syncbot serve``) opens sockets: on Lambda the worker never
        # starts, and a socket opened inside one request would die with its frozen process.
        self._started = False

    @property
    def clients(self) -> dict[str, SocketModeClient]:
        return dict(self._clients)

    async def start(self) -> None:
        """Connect every active workspace that has an app token.

        A database that is down (or not migrated yet) must not stop the service from starting:
        the health endpoint is how an operator learns about it. The connections are then
        retried in the background until the workspace list can be read.
        """
        self._started = True
        try:
            await self._connect_all()
        except Exception:
            log.warning("socket mode could not list workspaces; retrying", exc_info=True)
            self._retry_task = asyncio.create_task(self._retry_start(), name="socket-mode-start")

    async def _connect_all(self) -> None:
        infos = await asyncio.to_thread(self._workspaces.all)
        for info in infos:
            if info.status == "active" and info.has_app_token:
                await self.connect(info.team_id)
        log.info("socket mode started", extra={"workspaces": len(self._clients)})

    async def _retry_start(self, interval: float = 10.0) -> None:
        while self._started:
            await asyncio.sleep(interval)
            try:
                await self._connect_all()
                return
            except Exception:
                log.debug("socket mode start retry failed", exc_info=True)

    async def connect(self, team_id: str) -> SocketModeClient | None:
        """(Re)connect ``team_id`` with its current app token.

        A running client is replaced, so a new token takes effect and a failed workspace gets
        a fresh start.

        Returns:
            The new client, or ``None`` when the workspace has no app token or the manager is
            not running (it connects every workspace with an app token when it starts).
        """
        if not self._started:
            return None
        async with self._lock:
            old = self._clients.pop(team_id, None)
            if old is not None:
                await old.stop()
            self._workspaces.forget(team_id)
            try:
                token = await asyncio.to_thread(self._workspaces.app_token, team_id)
            except UnknownWorkspace:
                token = None
            if not token:
                return None
            client = SocketModeClient(
                team_id=team_id,
                app_token=token,
                handler=self._handle,
                board=self.board,
                api_url=self._api_url,
                limiter=self._workspaces.limiter,
                timings=self._timings,
                rng=random.Random(self._rng.random()),
            )
            self._clients[team_id] = client
            await client.start()
            return client

    async def disconnect(self, team_id: str) -> None:
        """Stop ``team_id``'s client (uninstall, token removed)."""
        async with self._lock:
            client = self._clients.pop(team_id, None)
            if client is not None:
                await client.stop()

    async def stop(self) -> None:
        """Close every connection."""
        retry = getattr(self, "_retry_task", None)
        if retry is not None:
            retry.cancel()
        async with self._lock:
            self._started = False
            clients, self._clients = list(self._clients.values()), {}
        await asyncio.gather(*(c.stop() for c in clients), return_exceptions=True)
        await self.board.flush()

    @property
    def events(self) -> SlackEvents:
        """The relay path envelopes take (hooks registered on it see Socket Mode events too)."""
        return self._events

    def states(self) -> dict[str, ConnectionState]:
        return {team: snap.state for team, snap in self.board.all().items()}

    async def _handle(self, payload: dict[str, Any]) -> Response:
        # A start time far in the past leaves process() no inline delivery budget: it returns
        # as soon as the relay has recorded the event, so the ack goes out at once and the
        # dispatcher's worker (notified by process) delivers.
        return await self._events.handle_verified(payload, started=float("-inf"))
