"""The aiohttp server: routing, auth, fault and rate-limit application, and the loop thread."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import math
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from aiohttp import web

from . import files, oauth, user_scopes
from .events import EventBus, EventSettings
from .faults import Fault, FaultPlan
from .model import Workspace
from .socket_mode import SocketHub, SocketSettings
from .state import Call, SlackError, SlackState
from .webapi import HANDLERS

T = TypeVar("T")


class SlackServer:
    """Owns the loop thread, the HTTP/WebSocket server and the request pipeline."""

    def __init__(self, signing_secret: str, seed: int) -> None:
        self.state = SlackState()
        self.faults = FaultPlan(seed)
        self.event_settings = EventSettings()
        self.socket_settings = SocketSettings()
        self.oauth = oauth.OAuthApp()
        self.rate_limits: dict[str, int] = {}
        self.rate_window = 60.0
        self.port = 0
        self._rate_log: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None
        self.hub = SocketHub(self.socket_settings)
        # App-level token -> its app's hub; tokens of the default app map to ``hub``.
        self.hubs: dict[str, SocketHub] = {}
        self.team_hubs: dict[str, SocketHub] = {}
        self.events = EventBus(signing_secret, self.event_settings, self._socket_send)
        self.state.emit = self._emit

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Web API base URL for ``slack_sdk`` clients (ends with ``/api/``)."""
        return f"http://127.0.0.1:{self.port}/api/"

    def _add_routes(self, app: web.Application) -> None:
        """Hook: more routes on the same server (the control API)."""

    def start(
        self,
        port: int = 0,
        *,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop,
    ) -> SlackServer:
        """Start the server thread and wait until it listens on ``127.0.0.1:port`` (0: any)."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = loop_factory()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve(port))
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-slack", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    async def _serve(self, port: int) -> None:
        self._closing = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/link/", self._link)
        app.router.add_get("/oauth/v2/authorize", self._authorize)
        app.router.add_post("/upload/v1/{team}/{file}", self._upload)
        app.router.add_get("/files-pri/{key}/{name}", self._download)
        app.router.add_get("/files-pri/dl/{key}/{name}", self._download)
        self._add_routes(app)
        # No access log: the fake serves thousands of calls a test, and a log line each is noise.
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        # aiohttp exposes the bound ephemeral port nowhere else than its server (asyncio's or
        # uvloop's: both have ``sockets``).
        sockets = getattr(site._server, "sockets", None)
        assert sockets
        self.port = int(sockets[0].getsockname()[1])
        self.state.base_url = f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        """Close sockets, cancel deliveries, stop the loop and join the thread."""
        if self._loop is None or not self._loop.is_running():
            return

        async def shutdown() -> None:
            assert self._closing is not None and self._runner is not None
            self._closing.set()
            for hub in {id(h): h for h in [self.hub, *self.hubs.values()]}.values():
                await hub.close()
            await self.events.close()
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the fake's loop (state is only touched there) and return its result."""
        loop = self._loop
        assert loop is not None, "FakeSlack is not started"
        if threading.current_thread() is self._thread:
            return fn()

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(10)

    def run_coro(self, coro: Any, timeout: float = 10) -> Any:
        """Run a coroutine on the fake's loop from a test thread."""
        assert self._loop is not None, "FakeSlack is not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # --- events ------------------------------------------------------------------------------

    def _emit(self, team_id: str, event: dict[str, Any]) -> str | None:
        ws = self.state.workspaces.get(team_id)
        shared = self._shared_views(team_id, event)
        if not shared:
            if ws is not None and ws.installation is not None:
                member = self._private_audience(ws, event)
                if member is not None:
                    if not member:
                        return None
                    return self.events.emit(ws.installation, event, as_user=member)
            return self.events.emit(ws.installation if ws else None, event)
        # A Slack Connect channel: every workspace it is shared with that installed the app
        # hears of the event through its own installation, with its own event id, the
        # envelope marked is_ext_shared_channel and its authorizations naming that
        # installation only (https://docs.slack.dev/apis/slack-connect,
        # https://api.slack.com/methods/apps.event.authorizations.list). Messages carry the
        # author's workspace as user_team/source_team.
        if event.get("type") == "message" and event.get("team"):
            event.setdefault("user_team", event["team"])
            event.setdefault("source_team", event["team"])
        first: str | None = None
        for team in shared:
            view = self.state.workspaces[team]
            event_id = self.events.emit(view.installation, copy.deepcopy(event), ext_shared=True)
            first = first or event_id
        return first

    def _private_audience(self, ws: Workspace, event: dict[str, Any]) -> str | None:
        """For an event in a DM or group DM without the app's bot: the member whose user token
        lets the app hear of it ("" when nobody's does); None for any other event.

        Bot events come only from conversations the bot is in; a DM between people reaches
        the app as a user event of a member who granted the scope the event needs
        (https://docs.slack.dev/reference/events/message.im).
        """
        channel = event.get("channel") or (event.get("item") or {}).get("channel")
        ch = ws.channels.get(channel) if isinstance(channel, str) else None
        assert ws.installation is not None
        if ch is None or not (ch.is_im or ch.is_mpim):
            return None
        if ws.installation.bot_user_id in ch.members:
            return None
        # A message needs the conversation's history scope; a reaction ``reactions:read``
        # (https://docs.slack.dev/reference/events/reaction_added).
        if event.get("type") in ("reaction_added", "reaction_removed"):
            scope = "reactions:read"
        else:
            scope = f"{user_scopes.family(ch)}:history"
        for grant in self.state.grants(ws):
            if grant.user_id in ch.members and scope in grant.scopes:
                return grant.user_id
        return ""

    def _shared_views(self, team_id: str, event: dict[str, Any]) -> list[str]:
        """The teams sharing the event's channel (the reporting one first), or [] if the
        channel is not shared."""
        ws = self.state.workspaces.get(team_id)
        channel = event.get("channel") or (event.get("item") or {}).get("channel")
        if isinstance(channel, dict):
            channel = channel.get("id")
        ch = ws.channels.get(channel) if ws is not None and isinstance(channel, str) else None
        if ch is None or not ch.shared_teams:
            return []
        others = sorted(
            t
            for t, other in self.state.workspaces.items()
            if t != team_id and other.channels.get(ch.id) is ch
        )
        return [team_id, *others]

    async def _socket_send(self, team_id: str, envelope: dict[str, Any], kind: str) -> bool:
        await self.team_hubs.get(team_id, self.hub).send(kind, envelope)
        return True

    async def _link(self, request: web.Request) -> web.StreamResponse:
        """``GET /link/?ticket=...``: the hub of the app whose token got the ticket answers."""
        ticket = request.query.get("ticket", "")
        for hub in [self.hub, *self.hubs.values()]:
            if hub.has_ticket(ticket):
                return await hub.handle(request)
        return web.Response(status=401, text="invalid ticket")

    # --- HTTP pipeline -----------------------------------------------------------------------

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        params: dict[str, Any] = dict(request.query)
        if "json" in request.content_type:
            body = json.loads(raw or b"{}")
            if isinstance(body, dict):
                params.update(body)
        elif request.content_type.startswith("multipart/"):
            pass
        elif raw:
            params.update(parse_qsl(raw.decode(), keep_blank_values=True))
        return params

    @staticmethod
    def _token(request: web.Request, params: dict[str, Any]) -> str | None:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth[7:].strip()
        token = params.pop("token", None)
        return str(token) if token is not None else None

    @staticmethod
    def _basic(request: web.Request) -> tuple[str, str] | None:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return None
        cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        return cid, secret

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params = await self._params(request)
        token = self._token(request, params) if not self._basic(request) else None
        grant = self.state.user_tokens.get(token or "")
        team_id = self.state.tokens.get(token or "") or (grant.team_id if grant else None)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        record = Call(
            method,
            dict(params),
            team_id,
            token,
            at=time.monotonic(),
            peer=(str(peer[0]), int(peer[1])) if peer else None,
        )
        self.state.calls.append(record)
        latency = self.faults.delay_for(method)
        if latency:
            await asyncio.sleep(latency)
        fault = record.fault = self.faults.next(method)
        if fault is not None and not fault.after:
            early = await self._apply(fault, request)
            if early is not None:
                return early
        limited = self._rate_limited(team_id or token or "", method)
        if limited is not None:
            return limited
        status, body = self._dispatch(method, params, token, request)
        if fault is not None and fault.after:
            late = await self._apply(fault, request)
            if late is not None:
                return late
        return web.json_response(body, status=status, headers={"X-Slack-Req-Id": uuid.uuid4().hex})

    def _dispatch(
        self, method: str, params: dict[str, Any], token: str | None, request: web.Request
    ) -> tuple[int, dict[str, Any]]:
        try:
            if method == "oauth.v2.access":
                return 200, oauth.access(self.state, self.oauth, params, self._basic(request))
            if method == "apps.connections.open":
                return 200, self._connections_open(token)
            handler = HANDLERS.get(method)
            if handler is None:
                return 404, {"ok": False, "error": "unknown_method", "req_method": method}
            if token and token.startswith("xapp-"):
                raise SlackError("not_allowed_token_type")
            ws, inst = self.state.auth(token)
            if inst.as_user:
                user_scopes.check(method, ws, params, inst.scopes)
            return 200, {"ok": True, **handler(self.state, ws, inst, params)}
        except SlackError as err:
            return 200, {"ok": False, "error": err.error, **err.extra}

    def _connections_open(self, token: str | None) -> dict[str, Any]:
        if not token:
            raise SlackError("not_authed")
        if not token.startswith("xapp-"):
            raise SlackError("not_allowed_token_type")
        if token not in self.state.app_tokens:
            raise SlackError("invalid_auth")
        ticket = self.hubs.get(token, self.hub).new_ticket()
        return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}"}

    def _rate_limited(self, key: str, method: str) -> web.Response | None:
        limit = self.rate_limits.get(method)
        if limit is None:
            return None
        now = time.monotonic()
        log = self._rate_log[(key, method)]
        while log and now - log[0] >= self.rate_window:
            log.popleft()
        if len(log) >= limit:
            retry = max(1, math.ceil(self.rate_window - (now - log[0])))
            return self._ratelimited(retry)
        log.append(now)
        return None

    @staticmethod
    def _ratelimited(retry_after: int) -> web.Response:
        return web.json_response(
            {"ok": False, "error": "ratelimited"},
            status=429,
            headers={"Retry-After": str(retry_after)},
        )

    async def _apply(self, fault: Fault, request: web.Request) -> web.StreamResponse | None:
        """Turn ``fault`` into the response (or non-response) the client sees."""
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay)
            return None
        if fault.kind == "ratelimited":
            return self._ratelimited(fault.retry_after)
        if fault.kind == "status":
            return web.Response(status=fault.status, text=f"fake upstream error {fault.status}")
        if fault.kind == "error":
            return web.json_response({"ok": False, "error": fault.error})
        if fault.kind == "hang":
            assert self._closing is not None
            await self._closing.wait()
        # "drop", and a "hang" ended by shutdown: close the socket without any response.
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError

    # --- non-API endpoints -------------------------------------------------------------------

    async def _authorize(self, request: web.Request) -> web.StreamResponse:
        return oauth.authorize(self.state, self.oauth, request)

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        return await files.upload(self.state, request)

    async def _download(self, request: web.Request) -> web.StreamResponse:
        return await files.download(self.state, request)
