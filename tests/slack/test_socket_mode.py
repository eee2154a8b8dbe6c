"""Socket Mode against a fake Slack endpoint: the seed's state machine, acks, refreshes, drops,
rate limits and auth failures; then the whole relay with Socket Mode and HTTP workspaces mixed.

The fake (:class:`FakeSocketSlack`) behaves like Slack where the client depends on it: ``hello``
first, unacknowledged envelopes redelivered (on the next connection, or after a timeout) with
``retry_attempt`` counting up, ``disconnect`` frames that leave the old socket open until the
client closes it, abrupt drops (transport aborted), HTTP 429 with ``Retry-After`` and
``invalid_auth``.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response

from app.assembly import Assembly, assemble, build_runtime
from app.core.endpoints import Endpoint
from app.core.outbox import RetryPolicy
from app.health import gather
from app.slack.events_route import SlackEvents
from app.slack.ratelimit import RateLimiter
from app.slack.socket_manager import SocketModeManager
from app.slack.socket_mode import SocketModeClient, SocketTimings
from app.slack.socket_state import Backoff, ConnectionBoard, ConnectionState
from app.store.cipher import TokenCipher
from app.store.engine import make_engine, session_factory
from app.store.migrate import upgrade
from app.store.models import Post
from app.store.models_health import SocketConnection
from fakeslack import FakeSlack
from tests.conftest import TEST_KEY, local_settings
from tests.databases import throwaway_database
from tests.slack.harness import three_workspaces
from tests.wait import wait_for_async

S = ConnectionState
FAST = SocketTimings(
    backoff=Backoff(base=0.02, cap=0.1, rate_limited=0.2), hello_timeout=5.0, heartbeat=10.0
)


class FakeSocketSlack:
    """``apps.connections.open`` and the Socket Mode WebSocket, on 127.0.0.1."""

    def __init__(self, redeliver_after: float = 1.0) -> None:
        self.redeliver_after = redeliver_after
        self.tokens: dict[str, str] = {}  # app token -> team
        self.open_faults: dict[str, deque[str]] = defaultdict(deque)
        self.opens: dict[str, int] = defaultdict(int)
        self.sockets: dict[str, list[web.WebSocketResponse]] = defaultdict(list)
        self.transports: dict[int, Any] = {}
        self.pending: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.acks: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.redelivered = 0
        self.silent_sockets = 0  # this many next sockets never say hello
        # For each new socket: how many of the team's sockets were still open at its hello.
        self.overlaps: dict[str, list[int]] = defaultdict(list)
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._redelivery: asyncio.Task[None] | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def add_app_token(self, team: str) -> str:
        token = f"xapp-1-{team}-{uuid.uuid4().hex}"
        self.tokens[token] = team
        return token

    def hellos(self, team: str) -> int:
        return len(self.sockets[team])

    async def start(self) -> FakeSocketSlack:
        app = web.Application()
        app.router.add_post("/api/apps.connections.open", self._open)
        app.router.add_get("/link", self._link)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._redelivery = asyncio.create_task(self._redeliver_late())
        return self

    async def stop(self) -> None:
        if self._redelivery is not None:
            self._redelivery.cancel()
            await asyncio.gather(self._redelivery, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    def current(self, team: str) -> web.WebSocketResponse | None:
        live = [ws for ws in self.sockets[team] if not ws.closed]
        return live[-1] if live else None

    async def send(self, team: str, payload: dict[str, Any], kind: str = "events_api") -> str:
        envelope_id = uuid.uuid4().hex
        frame = {
            "type": kind,
            "envelope_id": envelope_id,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": 0,
            "retry_reason": "",
        }
        self.pending[team][envelope_id] = frame
        await self._push(team, frame)
        return envelope_id

    async def _push(self, team: str, frame: dict[str, Any]) -> None:
        frame["sent_at"] = asyncio.get_running_loop().time()
        ws = self.current(team)
        if ws is not None:
            try:
                await ws.send_str(json.dumps(frame))
            except ConnectionError:
                pass  # redelivered later, as Slack does

    async def _redeliver_late(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            # Simulated: Slack's own redelivery timer, not a test waiting for a condition.
            await asyncio.sleep(self.redeliver_after / 4)
            for team, frames in self.pending.items():
                for frame in list(frames.values()):
                    if loop.time() - frame["sent_at"] > self.redeliver_after:
                        frame["retry_attempt"] += 1
                        frame["retry_reason"] = "timeout"
                        self.redelivered += 1
                        await self._push(team, frame)

    async def disconnect(self, team: str, reason: str) -> None:
        ws = self.current(team)
        assert ws is not None, "no open socket"
        await ws.send_str(json.dumps({"type": "disconnect", "reason": reason}))

    async def drop(self, team: str) -> None:
        ws = self.current(team)
        assert ws is not None, "no open socket"
        self.transports[id(ws)].abort()

    async def _open(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        team = self.tokens.get(token, "?")
        self.opens[team] += 1
        if self.open_faults[team]:
            fault = self.open_faults[team].popleft()
            if fault == "429":
                return web.json_response(
                    {"ok": False, "error": "ratelimited"},
                    status=429,
                    headers={"Retry-After": "0.2"},
                )
            return web.json_response({"ok": False, "error": "internal_error"}, status=500)
        if team == "?":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        url = f"ws://127.0.0.1:{self.port}/link?team={team}&ticket={uuid.uuid4().hex}"
        return web.json_response({"ok": True, "url": url})

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        team = request.query["team"]
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.transports[id(ws)] = request.transport
        self.overlaps[team].append(sum(1 for s in self.sockets[team] if not s.closed))
        self.sockets[team].append(ws)
        if self.silent_sockets:
            self.silent_sockets -= 1
            async for _msg in ws:
                pass
            return ws
        hello = {
            "type": "hello",
            "num_connections": len(self.sockets[team]),
            "debug_info": {"host": "fake", "approximate_connection_time": 18060},
            "connection_info": {"app_id": "A0SYNCBOT"},
        }
        await ws.send_str(json.dumps(hello))
        for frame in list(self.pending[team].values()):
            frame["retry_attempt"] += 1
            frame["retry_reason"] = "timeout"
            self.redelivered += 1
            await self._push(team, frame)
        try:
            async for msg in ws:
                ack = json.loads(msg.data)
                if self.pending[team].pop(ack.get("envelope_id"), None) is not None:
                    self.acks[team].append(ack)
        except (ConnectionError, asyncio.CancelledError):
            pass
        return ws


until = wait_for_async


class Recorder:
    """An envelope handler that records payloads; its answer can be scripted."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.statuses: deque[int] = deque()

    async def __call__(self, payload: dict[str, Any]) -> Response:
        self.payloads.append(payload)
        status = self.statuses.popleft() if self.statuses else 200
        if payload.get("type") == "block_actions":
            return JSONResponse({"text": "done"}, status_code=status)
        return Response(status_code=status)

    def ids(self) -> list[str]:
        return [p.get("event_id", "") for p in self.payloads]


@pytest.fixture
async def fake() -> AsyncIterator[FakeSocketSlack]:
    server = await FakeSocketSlack().start()
    yield server
    await server.stop()


def make_client(
    fake: FakeSocketSlack, token: str, board: ConnectionBoard, handler: Recorder
) -> SocketModeClient:
    return SocketModeClient(
        team_id="T1",
        app_token=token,
        handler=handler,
        board=board,
        api_url=fake.api_url,
        limiter=RateLimiter(scale=1000),
        timings=FAST,
        rng=random.Random(7),
    )


def event(n: int) -> dict[str, Any]:
    return {"type": "event_callback", "team_id": "T1", "event_id": f"Ev{n:04d}", "event": {}}


def states(board: ConnectionBoard) -> list[ConnectionState]:
    return [state for _team, state in board.transitions]


async def test_hello_then_envelopes_acked_in_order_and_stop(fake: FakeSocketSlack) -> None:
    board, handler = ConnectionBoard(), Recorder()
    client = make_client(fake, fake.add_app_token("T1"), board, handler)
    await client.start()
    await until(lambda: client.state is S.CONNECTED)
    assert states(board) == [S.DISCONNECTED, S.REQUESTING_URL, S.CONNECTING, S.CONNECTED]
    for n in range(5):
        await fake.send("T1", event(n))
    await fake.send("T1", {"type": "block_actions"}, kind="interactive")
    await until(lambda: len(fake.acks["T1"]) == 6)
    assert handler.ids()[:5] == [f"Ev{n:04d}" for n in range(5)]
    # An interactive envelope that accepts a response payload gets the handler's answer.
    assert fake.acks["T1"][5]["payload"] == {"text": "done"}
    assert client.late_acks == 0 and client.acked == 6
    assert board.get("T1").last_event_at is not None  # type: ignore[union-attr]
    await client.stop()
    assert client.state is S.STOPPED
    await until(lambda: fake.current("T1") is None)


@pytest.mark.parametrize("reason", ["warning", "refresh_requested"])
async def test_refresh_opens_the_new_socket_before_closing_the_old(
    fake: FakeSocketSlack, reason: str
) -> None:
    board, handler = ConnectionBoard(), Recorder()
    client = make_client(fake, fake.add_app_token("T1"), board, handler)
    await client.start()
    await until(lambda: client.state is S.CONNECTED)
    old = fake.current("T1")
    await fake.disconnect("T1", reason)
    # Still served by the old socket while the new one is being opened.
    await fake.send("T1", event(1))
    await until(lambda: fake.hellos("T1") == 2 and client.state is S.CONNECTED)
    await until(lambda: old is not None and old.closed)
    assert fake.overlaps["T1"] == [0, 1]  # the old socket was open when the new one said hello
    assert states(board)[-5:] == [
        S.CONNECTED,
        S.REFRESHING,
        S.REQUESTING_URL,
        S.CONNECTING,
        S.CONNECTED,
    ]
    assert S.DISCONNECTED not in states(board)[1:]
    await until(lambda: not fake.pending["T1"])
    assert handler.ids() == ["Ev0001"]
    await client.stop()


async def test_abrupt_drop_reconnects_and_redelivers(fake: FakeSocketSlack) -> None:
    board, handler = ConnectionBoard(), Recorder()
    client = make_client(fake, fake.add_app_token("T1"), board, handler)
    await client.start()
    await until(lambda: client.state is S.CONNECTED)
    handler.statuses.append(503)  # the first envelope cannot be recorded: no ack
    await fake.send("T1", event(1))
    await until(lambda: len(handler.payloads) == 1)
    await fake.drop("T1")
    await until(lambda: fake.hellos("T1") == 2 and client.state is S.CONNECTED)
    await until(lambda: not fake.pending["T1"])
    assert handler.ids() == ["Ev0001", "Ev0001"]  # redelivered on the new socket, then acked
    assert S.DISCONNECTED in states(board)[1:]
    snap = board.get("T1")
    assert snap is not None and snap.errors >= 1 and snap.attempts == 0
    await client.stop()


async def test_rate_limited_and_failing_open_waits_then_connects(
    fake: FakeSocketSlack, caplog: pytest.LogCaptureFixture
) -> None:
    board, handler = ConnectionBoard(), Recorder()
    token = fake.add_app_token("T1")
    fake.open_faults["T1"].extend(["429", "500", "429"])
    client = make_client(fake, token, board, handler)
    await client.start()
    await until(lambda: client.state is S.CONNECTED)
    assert fake.opens["T1"] == 4
    retries = [r for r in caplog.records if r.getMessage().startswith("socket mode connection")]
    assert [getattr(r, "error", None) for r in retries] == [
        "ratelimited",
        "internal_error",
        "ratelimited",
    ]
    # A 429 waits Retry-After; other failures back off.
    assert getattr(retries[0], "delay_s", None) == 0.2
    assert [getattr(r, "attempt", None) for r in retries] == [1, 2, 3]
    assert token not in caplog.text
    await client.stop()


async def test_invalid_app_token_fails_visibly_without_retrying(
    fake: FakeSocketSlack, caplog: pytest.LogCaptureFixture
) -> None:
    board, handler = ConnectionBoard(), Recorder()
    client = make_client(fake, "xapp-1-revoked-0123456789", board, handler)
    await client.start()
    await until(lambda: client.state is S.FAILED)
    await until(lambda: not client.running)  # its loop ended: it can open nothing more
    assert fake.opens["?"] == 1
    snap = board.get("T1")
    assert snap is not None and snap.detail == "invalid_auth"
    assert states(board) == [S.DISCONNECTED, S.REQUESTING_URL, S.FAILED]
    failure = [r for r in caplog.records if r.levelname == "ERROR"]
    assert failure and getattr(failure[0], "error", None) == "invalid_auth"
    assert "xapp-1-revoked" not in caplog.text
    await client.stop()
    assert client.state is S.FAILED  # stopping does not hide the failure


async def test_a_socket_that_never_says_hello_is_abandoned_and_retried(
    fake: FakeSocketSlack,
) -> None:
    board, handler = ConnectionBoard(), Recorder()
    fake.silent_sockets = 1
    client = SocketModeClient(
        team_id="T1",
        app_token=fake.add_app_token("T1"),
        handler=handler,
        board=board,
        api_url=fake.api_url,
        limiter=RateLimiter(scale=1000),
        timings=SocketTimings(backoff=FAST.backoff, hello_timeout=0.3, heartbeat=10.0),
    )
    await client.start()
    await until(lambda: client.state is S.CONNECTED)
    assert states(board) == [
        S.DISCONNECTED,
        S.REQUESTING_URL,
        S.CONNECTING,
        S.DISCONNECTED,
        S.REQUESTING_URL,
        S.CONNECTING,
        S.CONNECTED,
    ]
    await until(lambda: fake.sockets["T1"][0].closed)  # closed, not leaked
    await client.stop()


async def test_link_disabled_stops_without_reconnecting(fake: FakeSocketSlack) -> None:
    board, handler = ConnectionBoard(), Recorder()
    client = make_client(fake, fake.add_app_token("T1"), board, handler)
    await client.start()
    await until(lambda: client.state is S.CONNECTED)
    await fake.disconnect("T1", "link_disabled")
    await until(lambda: client.state is S.FAILED)
    await until(lambda: not client.running)  # its loop ended: it can open nothing more
    assert fake.opens["T1"] == 1
    await client.stop()


def test_backoff_is_capped_jittered_and_never_zero() -> None:
    backoff = Backoff(base=1.0, cap=30.0)
    rng = random.Random(3)
    for attempt in range(1, 20):
        ceiling = min(30.0, 2.0 ** (attempt - 1))
        delays = {backoff.delay(attempt, rng) for _ in range(20)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered: clients do not reconnect in step
    assert max(backoff.delay(50, rng) for _ in range(50)) <= 30.0


# -- the whole relay ----------------------------------------------------------------------


class World:
    def __init__(self, slack: FakeSlack, fake: FakeSocketSlack, parts: Assembly) -> None:
        self.slack = slack
        self.fake = fake
        self.parts = parts
        self.services = parts.services

    def post(self, team: str, channel: str, user: str, text: str) -> dict[str, Any]:
        ts = self.slack.post_message(team, channel, user, text)
        return next(
            e
            for e in reversed(self.slack.emitted)
            if e["team_id"] == team and e["event"].get("ts") == ts
        )

    async def post_http(self, envelope: dict[str, Any]) -> int:
        body = json.dumps(envelope).encode()
        app = Starlette(routes=self.parts.routes)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            response = await client.post(
                "/slack/events", content=body, headers=self.slack.sign(body)
            )
        return response.status_code

    def texts(self, team: str, channel: str) -> list[str]:
        return [m.text for m in self.slack.messages(team, channel)]


@pytest.fixture
async def world(fake: FakeSocketSlack, tmp_path: Path) -> AsyncIterator[World]:
    slack = FakeSlack().start()  # no app_url: tests hand its events to the app themselves
    three_workspaces(slack)
    with throwaway_database("sqlite", tmp_path) as url:
        settings = local_settings(
            slack_signing_secret=slack.signing_secret, slack_api_url=slack.base_url
        )
        engine = make_engine(settings, url=url)
        upgrade(engine)
        parts = assemble(
            settings,
            engine=engine,
            sessions=session_factory(engine),
            cipher=TokenCipher(TEST_KEY),
            retry=RetryPolicy(max_attempts=12, base_delay=0.05, max_delay=0.5),
            slack_rate_scale=1000.0,
            slack_timeout=2.0,
            socket_mode=False,
            matrix=False,
        )
        worker = asyncio.create_task(parts.services.outbox.run_forever(idle=0.1))
        try:
            yield World(slack, fake, parts)
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
            slack.stop()
            engine.dispose()


def manager_for(world: World) -> SocketModeManager:
    return SocketModeManager(
        workspaces=world.services.slack.workspaces,
        events=world.services.slack.events,
        board=ConnectionBoard(world.services.sessions),
        timings=FAST,
        rng=random.Random(11),
        api_url=world.fake.api_url,
    )


async def test_500_events_across_10_forced_reconnects_arrive_exactly_once(world: World) -> None:
    slack, fake, services = world.slack, world.fake, world.services
    workspaces = services.slack.workspaces
    await workspaces.add(slack.bot_token("T1"), fake.add_app_token("T1"))
    await workspaces.add(slack.bot_token("T2"))
    services.syncs.create("pair")
    services.syncs.add("pair", Endpoint.slack("T1", "C1"))
    services.syncs.add("pair", Endpoint.slack("T2", "C2"))
    manager = manager_for(world)
    await manager.start()
    assert set(manager.clients) == {"T1"}
    client = manager.clients["T1"]
    await until(lambda: client.state is S.CONNECTED)

    sent: list[dict[str, Any]] = []
    forced = ["drop", "warning", "refresh_requested"]
    for n in range(500):
        envelope = world.post("T1", "C1", "U1", f"message {n:03d}")
        sent.append(envelope)
        await fake.send("T1", envelope)
        if n % 50 == 49:
            # Slack's own retries of recent events, with the same event_id, on this socket.
            for old in sent[-3:]:
                await fake.send("T1", old)
            kind = forced[(n // 50) % 3]
            hellos = fake.hellos("T1")
            if kind == "drop":
                await fake.drop("T1")
            else:
                await fake.disconnect("T1", kind)
            await until(lambda h=hellos: fake.hellos("T1") > h and client.state is S.CONNECTED)
    assert fake.hellos("T1") == 11  # the first connection and 10 forced reconnects
    await until(lambda: not fake.pending["T1"])
    expected = sorted(f"message {n:03d}" for n in range(500))
    await until(lambda: len(world.texts("T2", "C2")) >= 500, within=40)
    await services.outbox.wait_idle(10)
    assert sorted(world.texts("T2", "C2")) == expected
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Post)) == 500
    # Every envelope, duplicates included, was acknowledged; only 500 posts were recorded.
    assert len(fake.acks["T1"]) >= 530
    await manager.stop()


async def test_two_socket_mode_workspaces_and_one_http_in_one_sync(world: World) -> None:
    slack, fake, services = world.slack, world.fake, world.services
    workspaces = services.slack.workspaces
    await workspaces.add(slack.bot_token("T1"), fake.add_app_token("T1"))
    await workspaces.add(slack.bot_token("T2"))
    await workspaces.add(slack.bot_token("T3"))  # Events API over HTTP
    services.syncs.create("general")
    for team, channel in (("T1", "C1"), ("T2", "C2"), ("T3", "C3")):
        services.syncs.add("general", Endpoint.slack(team, channel))
    manager = manager_for(world)
    await manager.start()
    assert set(manager.clients) == {"T1"}
    # T2 gets an app token at run time (the Matrix bridge's `login app`).
    await workspaces.add(slack.bot_token("T2"), fake.add_app_token("T2"))
    await manager.connect("T2")
    await until(lambda: manager.states() == {"T1": S.CONNECTED, "T2": S.CONNECTED})

    from_t1 = world.post("T1", "C1", "U1", "hello from one")
    await fake.send("T1", from_t1)
    await fake.send("T2", world.post("T2", "C2", "U2", "hello from two"))
    assert await world.post_http(world.post("T3", "C3", "U3", "hello from three")) == 200
    # The same event over the other transport is recognised by its event_id.
    assert await world.post_http(from_t1) == 200

    def others(team: str, channel: str, own: str) -> list[str]:
        return sorted(t for t in world.texts(team, channel) if t != own)

    await until(
        lambda: others("T1", "C1", "hello from one") == ["hello from three", "hello from two"]
    )
    await until(
        lambda: others("T2", "C2", "hello from two") == ["hello from one", "hello from three"]
    )
    await until(
        lambda: others("T3", "C3", "hello from three") == ["hello from one", "hello from two"]
    )
    await services.outbox.wait_idle(10)
    assert world.texts("T2", "C2").count("hello from one") == 1
    assert world.texts("T3", "C3").count("hello from one") == 1

    await manager.board.flush()
    with services.sessions() as session:
        rows = {r.team_id: r.state for r in session.scalars(select(SocketConnection))}
    assert rows == {"T1": "connected", "T2": "connected"}
    await manager.stop()
    with services.sessions() as session:
        rows = {r.team_id: r.state for r in session.scalars(select(SocketConnection))}
    assert rows == {"T1": "stopped", "T2": "stopped"}


async def test_invalid_token_at_run_time_is_reported_by_health(world: World) -> None:
    slack, fake, services = world.slack, world.fake, world.services
    workspaces = services.slack.workspaces
    await workspaces.add(slack.bot_token("T1"), fake.add_app_token("T1"))
    await workspaces.add(slack.bot_token("T2"), "xapp-1-T2-revoked")
    manager = manager_for(world)
    await manager.start()
    await until(lambda: manager.states() == {"T1": S.CONNECTED, "T2": S.FAILED})
    await until(lambda: not manager.clients["T2"].running)  # it gave up: nothing more to open
    assert fake.opens["?"] == 1  # no retry storm
    report = await asyncio.to_thread(gather, services.sessions, board=manager.board)
    assert report.status == "degraded" and report.failed_connections == ["T2"]
    assert report.connections["T2"].detail == "invalid_auth"
    # `login app` with a good token brings it back.
    await workspaces.add(slack.bot_token("T2"), fake.add_app_token("T2"))
    await manager.connect("T2")
    await until(lambda: manager.states()["T2"] is S.CONNECTED)
    await manager.stop()
    report = await asyncio.to_thread(gather, services.sessions)
    assert {t: c.state for t, c in report.connections.items()} == {
        "T1": S.STOPPED,
        "T2": S.STOPPED,
    }


def test_the_runtime_runs_socket_mode_as_a_worker_even_without_a_signing_secret(
    tmp_path: Path,
) -> None:
    with throwaway_database("sqlite", tmp_path) as url:
        settings = local_settings(slack_signing_secret=None)
        engine = make_engine(settings, url=url)
        runtime = build_runtime(settings, engine=engine)
        try:
            # A Socket-Mode-only install serves no HTTP events route...
            assert not runtime.services.slack.routes
            manager = runtime.socket_mode
            assert manager is not None
            # ...but envelopes still get the relay path, and serve runs the manager.
            assert isinstance(manager.events, SlackEvents)
            assert manager in runtime.workers
            assert manager.events is runtime.services.slack.events
        finally:
            runtime.close()


async def test_a_manager_that_is_not_running_opens_no_socket(world: World) -> None:
    slack, fake, services = world.slack, world.fake, world.services
    await services.slack.workspaces.add(slack.bot_token("T1"), fake.add_app_token("T1"))
    manager = manager_for(world)
    # Lambda: the worker never starts, so a login in a request must not open a socket.
    assert await manager.connect("T1") is None
    assert fake.opens["T1"] == 0 and not manager.clients
