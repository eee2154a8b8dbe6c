"""Socket Mode against a fake Slack endpoint: the seed's state machine, acks, refreshes, drops,
rate limits and auth failures; then the whole relay with Socket Mode and HTTP workspaces mixed.

The fake is the repository's one fake Slack (:mod:`fakeslack`), each workspace with its own app
and ``xapp-`` token: ``hello`` first, unacknowledged envelopes re-sent after the ack deadline with
``retry_attempt`` counting up, ``disconnect`` frames that leave the old socket open until the
client closes it, abrupt drops (transport aborted), HTTP 429 with whole-second ``Retry-After``
and ``invalid_auth``.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import deque
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
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


def socket_fake() -> FakeSlack:
    slack = FakeSlack()
    # Slack re-sends an unacked envelope after 3 s; a shorter deadline keeps redelivery fast.
    slack.socket_settings.ack_deadline = 1.0
    return slack.start()


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    slack = socket_fake()
    yield slack
    slack.stop()


def make_client(
    fake: FakeSlack, token: str, board: ConnectionBoard, handler: Recorder
) -> SocketModeClient:
    return SocketModeClient(
        team_id="T1",
        app_token=token,
        handler=handler,
        board=board,
        api_url=fake.base_url,
        limiter=RateLimiter(scale=1000),
        timings=FAST,
        rng=random.Random(7),
    )


def event(n: int) -> dict[str, Any]:
    return {"type": "event_callback", "team_id": "T1", "event_id": f"Ev{n:04d}", "event": {}}


def states(board: ConnectionBoard) -> list[ConnectionState]:
    return [state for _team, state in board.transitions]


async def test_hello_then_envelopes_acked_in_order_and_stop(fake: FakeSlack) -> None:
    board, handler = ConnectionBoard(), Recorder()
    client = make_client(fake, fake.add_app_token("T1"), board, handler)
    await client.start()
    await until(lambda: client.state is S.CONNECTED)
    assert states(board) == [S.DISCONNECTED, S.REQUESTING_URL, S.CONNECTING, S.CONNECTED]
    for n in range(5):
        fake.send_socket("events_api", team_id="T1", payload=event(n))
    fake.send_socket("interactive", {"type": "block_actions"}, True, team_id="T1")
    await until(lambda: len(fake.socket_acks("T1")) == 6)
    assert handler.ids()[:5] == [f"Ev{n:04d}" for n in range(5)]
    # An interactive envelope that accepts a response payload gets the handler's answer.
    assert fake.socket_acks("T1")[5]["payload"] == {"text": "done"}
    assert client.late_acks == 0 and client.acked == 6
    assert board.get("T1").last_event_at is not None  # type: ignore[union-attr]
    await client.stop()
    assert client.state is S.STOPPED
    await until(lambda: fake.socket_current("T1") is None)


@pytest.mark.parametrize("reason", ["warning", "refresh_requested"])
async def test_refresh_opens_the_new_socket_before_closing_the_old(
    fake: FakeSlack, reason: str
) -> None:
    board, handler = ConnectionBoard(), Recorder()
    client = make_client(fake, fake.add_app_token("T1"), board, handler)
    await client.start()
    await until(lambda: client.state is S.CONNECTED)
    old = fake.socket_current("T1")
    fake.socket_disconnect(reason, fake.socket_current("T1"), team_id="T1")
    # Still served by the old socket while the new one is being opened.
    fake.send_socket("events_api", team_id="T1", payload=event(1))
    await until(lambda: fake.socket_hellos("T1") == 2 and client.state is S.CONNECTED)
    await until(lambda: old is not None and fake.socket_closed(old, "T1"))
    assert fake.socket_overlaps("T1") == [
        0,
        1,
    ]  # the old socket was open when the new one said hello
    assert states(board)[-5:] == [
        S.CONNECTED,
        S.REFRESHING,
        S.REQUESTING_URL,
        S.CONNECTING,
        S.CONNECTED,
    ]
    assert S.DISCONNECTED not in states(board)[1:]
    await until(lambda: not fake.socket_pending("T1"))
    assert handler.ids() == ["Ev0001"]
    await client.stop()


async def test_abrupt_drop_reconnects_and_redelivers(fake: FakeSlack) -> None:
    board, handler = ConnectionBoard(), Recorder()
    client = make_client(fake, fake.add_app_token("T1"), board, handler)
    await client.start()
    await until(lambda: client.state is S.CONNECTED)
    handler.statuses.append(503)  # the first envelope cannot be recorded: no ack
    fake.send_socket("events_api", team_id="T1", payload=event(1))
    await until(lambda: len(handler.payloads) == 1)
    fake.socket_drop(fake.socket_current("T1"), team_id="T1")
    await until(lambda: fake.socket_hellos("T1") == 2 and client.state is S.CONNECTED)
    await until(lambda: not fake.socket_pending("T1"))
    assert handler.ids() == ["Ev0001", "Ev0001"]  # redelivered on the new socket, then acked
    assert S.DISCONNECTED in states(board)[1:]
    snap = board.get("T1")
    assert snap is not None and snap.errors >= 1 and snap.attempts == 0
    await client.stop()


async def test_rate_limited_and_failing_open_waits_then_connects(
    fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    board, handler = ConnectionBoard(), Recorder()
    token = fake.add_app_token("T1")
    # Retry-After is whole seconds in real Slack (https://docs.slack.dev/apis/web-api/rate-limits).
    fake.fail("apps.connections.open", "429:1", "error:internal_error", "429:1")
    client = make_client(fake, token, board, handler)
    await client.start()
    await until(lambda: client.state is S.CONNECTED)
    assert fake.connection_opens(token) == 4
    retries = [r for r in caplog.records if r.getMessage().startswith("socket mode connection")]
    assert [getattr(r, "error", None) for r in retries] == [
        "ratelimited",
        "internal_error",
        "ratelimited",
    ]
    # A 429 waits Retry-After; other failures back off.
    assert getattr(retries[0], "delay_s", None) == 1.0
    assert [getattr(r, "attempt", None) for r in retries] == [1, 2, 3]
    assert token not in caplog.text
    await client.stop()


async def test_invalid_app_token_fails_visibly_without_retrying(
    fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    board, handler = ConnectionBoard(), Recorder()
    revoked = "xapp-1-revoked-0123456789"
    client = make_client(fake, revoked, board, handler)
    await client.start()
    await until(lambda: client.state is S.FAILED)
    await until(lambda: not client.running)  # its loop ended: it can open nothing more
    assert fake.connection_opens(revoked) == 1
    snap = board.get("T1")
    assert snap is not None and snap.detail == "invalid_auth"
    assert states(board) == [S.DISCONNECTED, S.REQUESTING_URL, S.FAILED]
    failure = [r for r in caplog.records if r.levelname == "ERROR"]
    assert failure and getattr(failure[0], "error", None) == "invalid_auth"
    assert "xapp-1-revoked" not in caplog.text
    await client.stop()
    assert client.state is S.FAILED  # stopping does not hide the failure


async def test_a_socket_that_never_says_hello_is_abandoned_and_retried(
    fake: FakeSlack,
) -> None:
    board, handler = ConnectionBoard(), Recorder()
    token = fake.add_app_token("T1")
    fake.silence_sockets(1, "T1")
    client = SocketModeClient(
        team_id="T1",
        app_token=token,
        handler=handler,
        board=board,
        api_url=fake.base_url,
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
    await until(lambda: fake.socket_closed(1, "T1"))  # closed, not leaked
    await client.stop()


async def test_link_disabled_stops_without_reconnecting(fake: FakeSlack) -> None:
    board, handler = ConnectionBoard(), Recorder()
    token = fake.add_app_token("T1")
    client = make_client(fake, token, board, handler)
    await client.start()
    await until(lambda: client.state is S.CONNECTED)
    fake.socket_disconnect("link_disabled", fake.socket_current("T1"), team_id="T1")
    await until(lambda: client.state is S.FAILED)
    await until(lambda: not client.running)  # its loop ended: it can open nothing more
    assert fake.connection_opens(token) == 1
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
    def __init__(self, slack: FakeSlack, parts: Assembly) -> None:
        # One fake Slack serves the bot's Web API and every workspace's Socket Mode app.
        self.slack = slack
        self.fake = slack
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
async def world(tmp_path: Path) -> AsyncIterator[World]:
    slack = socket_fake()  # no app_url: tests hand its events to the app themselves
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
            yield World(slack, parts)
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
        api_url=world.slack.base_url,
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
        fake.send_socket("events_api", team_id="T1", payload=envelope)
        if n % 50 == 49:
            # Slack's own retries of recent events, with the same event_id, on this socket.
            for old in sent[-3:]:
                fake.send_socket("events_api", team_id="T1", payload=old)
            kind = forced[(n // 50) % 3]
            hellos = fake.socket_hellos("T1")
            if kind == "drop":
                fake.socket_drop(fake.socket_current("T1"), team_id="T1")
            else:
                fake.socket_disconnect(kind, fake.socket_current("T1"), team_id="T1")
            await until(
                lambda h=hellos: fake.socket_hellos("T1") > h and client.state is S.CONNECTED
            )
    assert fake.socket_hellos("T1") == 11  # the first connection and 10 forced reconnects
    await until(lambda: not fake.socket_pending("T1"))
    expected = sorted(f"message {n:03d}" for n in range(500))
    await until(lambda: len(world.texts("T2", "C2")) >= 500, within=40)
    await services.outbox.wait_idle(10)
    assert sorted(world.texts("T2", "C2")) == expected
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Post)) == 500
    # Every envelope, duplicates included, was acknowledged; only 500 posts were recorded.
    assert len(fake.socket_acks("T1")) >= 530
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
    fake.send_socket("events_api", team_id="T1", payload=from_t1)
    fake.send_socket(
        "events_api", team_id="T2", payload=world.post("T2", "C2", "U2", "hello from two")
    )
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
    revoked = "xapp-1-T2-revoked"
    await workspaces.add(slack.bot_token("T2"), revoked)
    manager = manager_for(world)
    await manager.start()
    await until(lambda: manager.states() == {"T1": S.CONNECTED, "T2": S.FAILED})
    await until(lambda: not manager.clients["T2"].running)  # it gave up: nothing more to open
    assert fake.connection_opens(revoked) == 1  # no retry storm
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
    token = fake.add_app_token("T1")
    await services.slack.workspaces.add(slack.bot_token("T1"), token)
    manager = manager_for(world)
    # Lambda: the worker never starts, so a login in a request must not open a socket.
    assert await manager.connect("T1") is None
    assert fake.connection_opens(token) == 0 and not manager.clients
