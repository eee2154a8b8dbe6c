"""The composition root: every adapter built once, every hook, route, worker and tick listed once.

:func:`assemble` builds the typed adapter objects (Slack, federation, Matrix, the Slack <-> Matrix
bridge, Socket Mode, App Home) from the core's shared pieces; :func:`build_runtime` turns them
into a :class:`~app.runtime.Runtime` and lists, in one explicit order, what it serves
(``routes``), runs (``workers``) and ticks (``maintenance``). The web app, the CLI, the Lambda
entry and the tests all assemble through here, so there is exactly one way the pieces fit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.routing import BaseRoute

from app.bridge.channels import slack_channel_info
from app.bridge.setup import SlackBridge, build_bridge
from app.core.authors import AuthorDirectory
from app.core.dispatch import Dispatcher, Notifier
from app.core.files import FileSources
from app.core.ingest import Ingest
from app.core.outbox import Outbox, RetryPolicy
from app.core.relay import Relay
from app.federation.setup import build_federation
from app.logs import install_error_counter
from app.matrix import appservice
from app.matrix.ghosts import AvatarFetcher
from app.matrix.setup import MatrixAdapter, build_matrix
from app.metrics import metrics_route
from app.oidc import OidcVerifier
from app.queues import build_notifier
from app.runtime import MaintenanceTask, Runtime, Worker, purge_expired_claims
from app.services import OutboxWorker, Services
from app.settings import Settings
from app.slack.home.app import HomeApp, build_home
from app.slack.home.sections.held import stale_on_bot_return, stale_on_hold
from app.slack.oauth import SlackInstalls, build_installs
from app.slack.setup import build_slack
from app.slack.socket_manager import SocketModeManager
from app.slack.socket_mode import SocketTimings
from app.slack.socket_state import ConnectionBoard
from app.slack.stray_channels import StrayChannels
from app.store.cipher import TokenCipher
from app.store.engine import make_engine, session_factory
from app.store.keyfile import token_key
from app.store.login_dialogues import LoginDialogues
from app.store.relay_store import SqlStore
from app.store.syncs import SyncAdmin
from app.tick_route import tick_route

T = TypeVar("T")


@dataclass
class Assembly:
    """Every adapter of one process, built and wired (see :func:`assemble`)."""

    services: Services
    installs: SlackInstalls
    strays: StrayChannels
    home: HomeApp
    # Socket Mode connections (a worker of `syncbot serve`); None when not asked for.
    socket_mode: SocketModeManager | None = None
    # The Matrix bridge, when its settings are complete (and it was asked for).
    matrix: MatrixAdapter | None = None
    bridge: SlackBridge | None = None

    @property
    def routes(self) -> list[BaseRoute]:
        """The adapters' routes: Slack events, OAuth, federation, the appservice API."""
        routes: list[BaseRoute] = [*self.services.slack.routes, *self.installs.routes]
        if self.services.federation is not None:
            routes += self.services.federation.routes
        if self.matrix is not None:
            routes += self.matrix.routes
        return routes

    @property
    def workers(self) -> list[Worker]:
        """Started in this order (and stopped in the reverse one) by the ASGI lifespan."""
        workers: list[Worker] = [
            OutboxWorker(self.services.outbox, http=self.services.slack.workspaces.http)
        ]
        if self.socket_mode is not None:
            workers.append(self.socket_mode)
        if self.matrix is not None:
            workers.append(self.matrix)
        if self.bridge is not None:
            # After the adapter: its resync needs the bot registered.
            workers.append(self.bridge)
        return workers


def assemble(
    settings: Settings,
    *,
    engine: Engine,
    sessions: sessionmaker[Session],
    cipher: TokenCipher,
    retry: RetryPolicy | None = None,
    slack_rate_scale: float = 1.0,
    slack_timeout: float = 10.0,
    worker_id: str | None = None,
    lease_seconds: float = 120.0,
    notifier: Notifier | None = None,
    socket_mode: bool = True,
    socket_timings: SocketTimings | None = None,
    matrix: bool = True,
    fetch_avatar: AvatarFetcher | None = None,
    matrix_timeout: float = 30.0,
) -> Assembly:
    """Build and wire every adapter.

    Args:
        socket_mode: build the Socket Mode manager (its connections open only once started).
        matrix: build the Matrix bridge when the Matrix settings are complete.
        fetch_avatar, matrix_timeout: Matrix tunables (tests inject them).
    """
    # The core and its shared ports.
    store = SqlStore(sessions)
    relay = Relay(store)
    policy = retry or RetryPolicy(max_age=settings.delivery_max_age_hours * 3600)
    outbox = Outbox(store, {}, policy=policy, worker_id=worker_id, lease_seconds=lease_seconds)
    dispatcher = Dispatcher(outbox, store, notifier or build_notifier(settings, outbox))
    # The one way inbound events enter the sync, on every path (Slack, Matrix, peers).
    ingest = Ingest(relay, dispatcher)
    authors = AuthorDirectory()
    files = FileSources()
    syncs = SyncAdmin(sessions)
    # The adapters; each registers its deliverer, author resolver and file source.
    slack = build_slack(
        settings=settings,
        sessions=sessions,
        cipher=cipher,
        outbox=outbox,
        ingest=ingest,
        dispatcher=dispatcher,
        authors=authors,
        files=files,
        rate_scale=slack_rate_scale,
        api_timeout=slack_timeout,
    )
    workspaces = slack.workspaces
    federation = None
    if settings.federation_enabled:
        federation = build_federation(
            settings=settings,
            sessions=sessions,
            cipher=cipher,
            outbox=outbox,
            ingest=ingest,
            authors=authors,
            files=files,
        )
    sockets = None
    if socket_mode:
        # error_count covers the process's life, so count from assembly, not the first probe.
        install_error_counter()
        sockets = SocketModeManager(
            workspaces=workspaces,
            events=slack.events,
            board=ConnectionBoard(sessions),
            timings=socket_timings,
        )
    matrix_adapter = None
    bridge = None
    if matrix and settings.matrix_enabled:
        matrix_adapter = build_matrix(
            settings=settings,
            sessions=sessions,
            outbox=outbox,
            ingest=ingest,
            authors=authors,
            files=files,
            workspaces=workspaces,
            channel_info=slack_channel_info(workspaces, slack.puppets),
            fetch_avatar=fetch_avatar,
            timeout=matrix_timeout,
            cipher=cipher,
            puppets=slack.puppets,
        )
        bridge = build_bridge(
            settings=settings,
            sessions=sessions,
            matrix=matrix_adapter,
            workspaces=workspaces,
            authors=authors,
            connect_socket=sockets.connect if sockets is not None else None,
            outbox=outbox,
            slack_deliverer=slack.deliverer,
            puppets=slack.puppets,
        )
    services = Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        cipher=cipher,
        store=store,
        relay=relay,
        outbox=outbox,
        dispatcher=dispatcher,
        authors=authors,
        syncs=syncs,
        files=files,
        slack=slack,
        federation=federation,
        matrix_links=matrix_adapter.links if matrix_adapter is not None else None,
    )
    installs = build_installs(settings, sessions=sessions, cipher=cipher, workspaces=workspaces)
    strays = StrayChannels(sessions, workspaces)
    home = build_home(services)
    # The hooks on the one Slack events path (HTTP and Socket Mode share it), in order: the
    # install lifecycle, stray channels, the App Home, then the bridge's (the workspace
    # bridge's last: it may ask Slack to redeliver an event whose portal is being created).
    events = slack.events
    events.on({"app_uninstalled", "tokens_revoked"}, installs.lifecycle.on_event)
    events.on({"member_joined_channel", "member_left_channel"}, strays.on_event)
    home.hook(events)
    # The App Home lists held channels: a hold or the bot's return makes it stale.
    services.outbox.on_hold.append(stale_on_hold(home))
    events.on({"member_joined_channel"}, stale_on_bot_return(home, workspaces))
    if bridge is not None:
        events.event_hooks.extend(bridge.slack_hooks)
    return Assembly(
        services=services,
        installs=installs,
        strays=strays,
        home=home,
        socket_mode=sockets,
        matrix=matrix_adapter,
        bridge=bridge,
    )


def build_runtime(settings: Settings, *, engine: Engine | None = None) -> Runtime:
    """Assemble the runtime for ``settings``. Does not connect to the database yet.

    Args:
        settings: validated settings.
        engine: an engine to use instead of one built from the settings (tests).
    """
    engine = engine or make_engine(settings)
    sessions = session_factory(engine)
    cipher = TokenCipher(token_key(settings), settings.token_previous_keys)
    parts = assemble(
        settings,
        engine=engine,
        sessions=sessions,
        cipher=cipher,
        slack_rate_scale=settings.slack_rate_scale,
    )
    services = parts.services
    runtime = Runtime(
        settings=settings,
        engine=engine,
        sessions=sessions,
        cipher=cipher,
        services=services,
        installs=parts.installs,
        home=parts.home,
        socket_mode=parts.socket_mode,
        matrix=parts.matrix,
        bridge=parts.bridge,
    )
    # Routes.
    runtime.add_routes(*parts.routes)
    if settings.tick_invokers and settings.public_url:
        verifier = OidcVerifier(
            audience=settings.public_url, invokers=frozenset(settings.tick_invokers)
        )
        runtime.add_routes(tick_route(runtime, verifier))
    if settings.dispatch == "cloud_tasks":
        from app.queues.cloud_tasks import delivery_route  # google-auth only where it is used

        invoker = OidcVerifier(
            audience=str(settings.public_url),
            invokers=frozenset({str(settings.delivery_invoker)}),
        )
        runtime.add_routes(
            delivery_route(services.dispatcher, services.dispatcher.notifier, invoker)
        )
    # Count errors from now on, not from the first scrape.
    install_error_counter()
    runtime.add_routes(metrics_route(runtime))
    # Workers.
    for worker in parts.workers:
        runtime.add_worker(worker)
    # Maintenance, run by the scheduler's tick (or the ticker of `syncbot serve`).
    for task in maintenance_tasks(parts):
        runtime.add_maintenance(task)
    return runtime


def maintenance_tasks(parts: Assembly) -> list[MaintenanceTask]:
    """What the scheduler's tick (or `serve`'s ticker thread) runs, each round in a loop of its
    own."""
    services, installs, strays, matrix = parts.services, parts.installs, parts.strays, parts.matrix

    def in_own_loop(work: Coroutine[Any, Any, T]) -> T:
        async def run() -> T:
            try:
                return await work
            finally:
                # This loop ends with the round: its homeserver connections go with it.
                if matrix is not None:
                    await matrix.homeserver.close()

        return asyncio.run(run())

    def outbox_catch_up(_runtime: Runtime) -> int:
        # The tick of runtimes with no worker between requests (Lambda, Cloud Run): deliver
        # whatever is due, within a budget well under the scheduler's timeout.
        report = in_own_loop(services.outbox.drain(budget=50.0))
        return report.delivered

    def purge_uninstalled_workspaces(_runtime: Runtime) -> int:
        return installs.lifecycle.purge()

    def refresh_rotating_tokens(_runtime: Runtime) -> int:
        return asyncio.run(installs.refresher.refresh_due())

    def leave_stray_channels(_runtime: Runtime) -> int:
        return asyncio.run(strays.sweep())

    tasks: list[MaintenanceTask] = [purge_expired_claims, outbox_catch_up]
    federation = services.federation
    if federation is not None:

        def purge_federation_nonces(_runtime: Runtime) -> int:
            return federation.purge_nonces()

        tasks.append(purge_federation_nonces)
    tasks += [purge_uninstalled_workspaces, refresh_rotating_tokens, leave_stray_channels]
    if parts.matrix is not None:
        catchup = parts.matrix.catchup

        def purge_matrix_transactions(runtime: Runtime) -> int:
            return appservice.purge_matrix_transactions(runtime.sessions)

        def purge_login_dialogues(runtime: Runtime) -> int:
            # An abandoned `login app` keeps no token past its expiry.
            return LoginDialogues(runtime.sessions, services.cipher).purge_expired()

        def matrix_catch_up(_runtime: Runtime) -> int | None:
            # Where the serving loop sweeps on its own (`serve`), the tick leaves it alone;
            # a runtime with no loop between requests (Lambda) sweeps here.
            if catchup.running:
                return None
            return in_own_loop(catchup.sweep_now())

        tasks += [purge_matrix_transactions, purge_login_dialogues, matrix_catch_up]
    return tasks
