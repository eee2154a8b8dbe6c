"""Run the real app on loopback against the fake Slack, in a thread with its own loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import Engine
from starlette.applications import Starlette

from app.assembly import Assembly, assemble
from app.core.outbox import RetryPolicy
from app.services import Services
from app.settings import Settings
from app.store.cipher import TokenCipher
from app.store.engine import session_factory
from fakeslack import FakeSlack
from tests.databases import throwaway_database
from tests.wait import wait_for, wait_for_async

__all__ = [
    "CHANNELS",
    "AppServer",
    "free_port",
    "settled",
    "synced_app",
    "synced_database",
    "three_workspaces",
    "wait_for",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """The syncbot ASGI app plus its outbox worker, served by uvicorn on 127.0.0.1."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        worker: bool = True,
        retry: RetryPolicy | None = None,
        slack_timeout: float = 2.0,
        port: int | None = None,
        lease_seconds: float = 120.0,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.worker = worker
        self.retry = retry or RetryPolicy(max_attempts=12, base_delay=0.05, max_delay=0.5)
        self.slack_timeout = slack_timeout
        self.port = port or free_port()
        self.lease_seconds = lease_seconds
        self.parts: Assembly | None = None
        self.services: Services | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def assembly_options(self) -> dict[str, Any]:
        """Hook: which adapters :func:`app.assembly.assemble` builds (the Matrix harness)."""
        return {"socket_mode": False, "matrix": False}

    async def on_loop_start(self) -> None:
        """Hook: start adapters on the app's loop before it serves."""

    async def on_loop_stop(self) -> None:
        """Hook: stop them after it has served."""

    def start(self) -> AppServer:
        cipher = TokenCipher(self.settings.token_encryption_key or "")
        self.parts = assemble(
            self.settings,
            engine=self.engine,
            sessions=session_factory(self.engine),
            cipher=cipher,
            retry=self.retry,
            slack_rate_scale=1000.0,
            slack_timeout=self.slack_timeout,
            lease_seconds=self.lease_seconds,
            **self.assembly_options(),
        )
        self.services = self.parts.services
        app = Starlette(routes=self.parts.routes)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        ready = threading.Event()

        def run() -> None:
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)

            async def main() -> None:
                assert self.services is not None
                # As `syncbot serve` does: keep-alive connections to Slack on this loop.
                await self.services.slack.workspaces.http.open()
                await self.on_loop_start()
                worker = None
                if self.worker:
                    assert self.services is not None
                    worker = asyncio.ensure_future(self.services.outbox.run_forever(idle=0.2))
                serve = asyncio.ensure_future(self._server.serve())
                # uvicorn offers no start event to wait on.
                await wait_for_async(lambda: self._server.started)
                ready.set()
                await serve
                if worker:
                    worker.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await worker
                await self.on_loop_stop()
                await self.services.slack.workspaces.http.close()

            self.loop.run_until_complete(main())

        self._thread = threading.Thread(target=run, daemon=True, name="syncbot-app")
        self._thread.start()
        if not ready.wait(20):
            raise RuntimeError("app did not start")
        return self

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` on the app's loop (where its HTTP sessions live)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(20)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(15)


def settled(slack: FakeSlack, server: AppServer) -> bool:
    """Nothing is in flight: the app's outbox holds no pending delivery and the fake has
    delivered every event (an echo of our own post is emitted before the post is answered, so
    an empty outbox checked first means no echo can still be on its way)."""
    assert server.services is not None
    store = server.services.store
    return (
        store.next_due_in() is None
        and not slack.pending_events()
        and (store.next_due_in() is None)
    )


def subscribe_as_manifest(slack: FakeSlack) -> None:
    """The fake delivers only the events the app's manifest subscribes to, as Slack does."""
    from app.slack.subscriptions import BOT_EVENTS, USER_EVENTS

    slack.event_settings.bot_events = BOT_EVENTS
    slack.event_settings.user_events = USER_EVENTS


def three_workspaces(slack: FakeSlack) -> None:
    subscribe_as_manifest(slack)
    for team, name in (("T1", "Acme"), ("T2", "Beta"), ("T3", "Gamma")):
        slack.add_workspace(team, name)
    for team, user, name, email in (
        ("T1", "U1", "Ada", "ada@example.com"),
        ("T2", "U2", "Bob", "bob@example.com"),
        ("T2", "U2A", "Ada Lovelace", "ada@example.com"),
        ("T3", "U3", "Cy", "cy@example.com"),
    ):
        slack.add_user(team, user, name.lower(), real_name=name, display_name=name, email=email)
    for team, channel, members in (
        ("T1", "C1", ["U1"]),
        ("T2", "C2", ["U2", "U2A"]),
        ("T3", "C3", ["U3"]),
    ):
        slack.add_channel(team, channel, "general", members=members)


def synced_database(slack: FakeSlack, url, sync_name: str, endpoints: list[tuple[str, str]]):
    """Migrate the database at ``url``, install the fake's workspaces by bot token (through
    ``auth.test``, as an operator would) and put ``endpoints`` in one sync.

    Returns (settings, engine).
    """
    import asyncio

    from app.core.endpoints import Endpoint
    from app.slack.workspaces import Workspaces
    from app.store.engine import make_engine
    from app.store.migrate import upgrade
    from app.store.syncs import SyncAdmin
    from tests.conftest import TEST_KEY, local_settings

    settings = local_settings(
        slack_signing_secret=slack.signing_secret, slack_api_url=slack.base_url
    )
    engine = make_engine(settings, url=url)
    upgrade(engine)
    sessions = session_factory(engine)
    workspaces = Workspaces(sessions, TokenCipher(TEST_KEY), api_url=slack.base_url)
    for team in sorted({team for team, _ in endpoints}):
        asyncio.run(workspaces.add(slack.bot_token(team)))
    admin = SyncAdmin(sessions)
    admin.create(sync_name)
    for team, channel in endpoints:
        admin.add(sync_name, Endpoint.slack(team, channel))
    return settings, engine


# The one sync of three workspaces that ``three_workspaces`` makes, a channel each.
CHANNELS = [("T1", "C1"), ("T2", "C2"), ("T3", "C3")]


@contextlib.contextmanager
def synced_app(backend: str, tmp_path: Path) -> Iterator[tuple[FakeSlack, AppServer]]:
    """The fake Slack with ``three_workspaces`` in one sync ``general``, and the app serving it
    over HTTP on a throwaway ``backend`` database; all stopped afterwards."""
    slack = FakeSlack().start()
    three_workspaces(slack)
    with throwaway_database(backend, tmp_path) as url:
        settings, engine = synced_database(slack, url, "general", CHANNELS)
        server = AppServer(settings, engine).start()
        slack.app_url = f"{server.url}/slack/events"
        try:
            yield slack, server
        finally:
            server.stop()
            slack.stop()
            engine.dispose()
