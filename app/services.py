"""The sync machinery of one process: store, relay, outbox and the network adapters.

Built from settings by :func:`build_services`; the web app, the CLI, the Lambda entry and the
tests all assemble the same object, so there is exactly one way the pieces fit together.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.core.authors import AuthorDirectory
from app.core.dispatch import Dispatcher, Notifier
from app.core.outbox import Outbox, RetryPolicy
from app.core.relay import Relay
from app.settings import Settings
from app.slack.http_pool import HttpPool
from app.slack.setup import SlackAdapter, build_slack
from app.store.cipher import TokenCipher
from app.store.relay_store import SqlStore
from app.store.syncs import SyncAdmin

if TYPE_CHECKING:
    from app.runtime import Runtime


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    cipher: TokenCipher
    store: SqlStore
    relay: Relay
    outbox: Outbox
    dispatcher: Dispatcher
    authors: AuthorDirectory
    syncs: SyncAdmin
    slack: SlackAdapter
    # Other adapters (Matrix, federation, Socket Mode) attach themselves here by name.
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def routes(self) -> list[Any]:
        routes = list(self.slack.routes)
        for extra in self.extras.values():
            routes.extend(getattr(extra, "routes", []))
        return routes


def build_services(
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
) -> Services:
    from app.queues import build_notifier

    store = SqlStore(sessions)
    relay = Relay(store)
    policy = retry or RetryPolicy(max_age=settings.delivery_max_age_hours * 3600)
    outbox = Outbox(store, {}, policy=policy, worker_id=worker_id, lease_seconds=lease_seconds)
    dispatcher = Dispatcher(outbox, store, notifier or build_notifier(settings, outbox))
    authors = AuthorDirectory()
    slack = build_slack(
        settings=settings,
        sessions=sessions,
        cipher=cipher,
        relay=relay,
        outbox=outbox,
        dispatcher=dispatcher,
        authors=authors,
        rate_scale=slack_rate_scale,
        api_timeout=slack_timeout,
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
        syncs=SyncAdmin(sessions),
        slack=slack,
    )
    if settings.federation_enabled:
        from app.federation.setup import build_federation

        services.extras["federation"] = build_federation(services)
    _build_slack_installs(services)
    return services


class OutboxWorker:
    """The outbox's background worker as a runtime worker (``syncbot serve``)."""

    def __init__(self, outbox: Outbox, *, idle: float = 5.0, http: HttpPool | None = None) -> None:
        self._outbox = outbox
        self._idle = idle
        self._http = http
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # Deliveries complete in worker threads; the default pool (cores + 4) would make a
        # 25-way fan-out wait on 6 threads.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(32))
        if self._http is not None:
            # This loop lives as long as the process: keep connections to Slack open.
            await self._http.open()
        self._task = asyncio.create_task(
            self._outbox.run_forever(idle=self._idle), name="syncbot-outbox"
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._outbox.wait_idle(10.0)
        if self._http is not None:
            await self._http.close()


def attach(runtime: Runtime) -> Services:
    """Build the sync machinery for ``runtime`` and plug it in: routes, worker, tick."""
    services = build_services(
        runtime.settings,
        engine=runtime.engine,
        sessions=runtime.sessions,
        cipher=runtime.cipher,
        slack_rate_scale=runtime.settings.slack_rate_scale,
    )
    runtime.add_routes(*services.routes)
    runtime.add_worker(OutboxWorker(services.outbox, http=services.slack.workspaces.http))

    def outbox_catch_up(_runtime: Runtime) -> int:
        # The tick of runtimes with no worker between requests (Lambda, Cloud Run): deliver
        # whatever is due, within a budget well under the scheduler's timeout.
        report = asyncio.run(services.outbox.drain(budget=50.0))
        return report.delivered

    runtime.add_maintenance(outbox_catch_up)
    if runtime.settings.tick_invokers and runtime.settings.public_url:
        from app.oidc import OidcVerifier
        from app.tick_route import tick_route

        verifier = OidcVerifier(
            audience=runtime.settings.public_url,
            invokers=frozenset(runtime.settings.tick_invokers),
        )
        runtime.add_routes(tick_route(runtime, verifier))
    if runtime.settings.dispatch == "cloud_tasks":
        from app.oidc import OidcVerifier
        from app.queues.cloud_tasks import delivery_route

        invoker = OidcVerifier(
            audience=str(runtime.settings.public_url),
            invokers=frozenset({str(runtime.settings.delivery_invoker)}),
        )
        runtime.add_routes(
            delivery_route(services.dispatcher, services.dispatcher.notifier, invoker)
        )
    federation = services.extras.get("federation")
    if federation is not None:
        runtime.add_maintenance(lambda _rt: federation.purge_nonces())
    _attach_slack_installs(runtime, services.extras["slack_installs"])
    strays = services.extras["stray_channels"]

    def leave_stray_channels(_runtime: Runtime) -> int:
        return asyncio.run(strays.sweep())

    runtime.add_maintenance(leave_stray_channels)
    runtime.services = services
    # Socket Mode connections (a worker of `syncbot serve`) and the Prometheus endpoint.
    from app.metrics import attach_metrics
    from app.slack.socket_manager import attach_socket_mode

    attach_socket_mode(runtime)
    attach_metrics(runtime)
    return services


# --- Slack installs: OAuth routes, uninstall lifecycle, token rotation (app.slack.oauth) -------


def _build_slack_installs(services: Services) -> None:
    from app.slack.oauth import build_installs

    installs = build_installs(
        services.settings,
        sessions=services.sessions,
        cipher=services.cipher,
        workspaces=services.slack.workspaces,
    )
    # Its routes reach the web app through Services.routes (extras with a ``routes`` attribute).
    services.extras["slack_installs"] = installs
    from app.slack.stray_channels import StrayChannels

    strays = StrayChannels(services.sessions, services.slack.workspaces)
    services.extras["stray_channels"] = strays
    services.slack.events.event_hooks.append(installs.lifecycle.on_event)
    services.slack.events.event_hooks.append(strays.on_event)
    # The App Home (groups, publishing, ...).
    from app.slack.home.app import attach_home

    attach_home(services)


def _attach_slack_installs(runtime: Runtime, installs: Any) -> None:
    def purge_uninstalled_workspaces(_runtime: Runtime) -> int:
        return installs.lifecycle.purge()

    def refresh_rotating_tokens(_runtime: Runtime) -> int:
        return asyncio.run(installs.refresher.refresh_due())

    runtime.add_maintenance(purge_uninstalled_workspaces)
    runtime.add_maintenance(refresh_rotating_tokens)
