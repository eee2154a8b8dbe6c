"""``syncbot serve``: run the ASGI app under uvicorn with the runtime's background workers."""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from app.cli.common import EXIT_CONFIG, EXIT_FAILED, connect_or_exit, fail, settings_or_exit
from app.errors import ConfigError
from app.http_guard import GuardedH11Protocol
from app.parts import parts, summary
from app.periodic import Periodic
from app.runtime import Runtime
from app.serving import freeze_startup_heap, loop_name
from app.store.migrate import current_revisions, head_revisions, upgrade

log = logging.getLogger("syncbot.serve")

DEFAULT_HOST = "127.0.0.1"
TICK_SECONDS = 300.0
# What one client may hold: headers must arrive within 10 s, idle keep-alive connections close
# after 5 s, header blocks are capped at 64 KiB, and past 512 concurrent connections/requests
# uvicorn answers 503 instead of queueing without bound. Bodies: app.bodylimit.
SERVER_LIMITS: dict[str, Any] = {
    "http": GuardedH11Protocol,  # request headers within 10 s of connecting (app.http_guard)
    "timeout_keep_alive": 5,
    "limit_concurrency": 512,
    "h11_max_incomplete_event_size": 64 * 1024,
    "timeout_graceful_shutdown": 30,
}


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "serve",
        help="run the web service",
        description="Serve the app (health, Slack events, Matrix appservice, federation) on "
        "HOST:PORT. Outside LOCAL_DEVELOPMENT it refuses to start on a missing or weak secret. "
        "The schema is upgraded at start when SYNCBOT_AUTO_MIGRATE (or local use) allows it.",
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="address to bind (default: 127.0.0.1; use 0.0.0.0 in a container)",
    )
    parser.add_argument("--port", type=_port, help="port to bind (default: PORT, 3000)")
    parser.add_argument(
        "--wait-db",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="how long to wait for a cold database (default: 20)",
    )
    parser.set_defaults(func=run)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1-65535, not {port}")
    return port


class MaintenanceTicker:
    """Runs the runtime's maintenance tasks periodically (the scheduler's job on Lambda)."""

    def __init__(self, runtime: Runtime, interval: float = TICK_SECONDS) -> None:
        self.runtime = runtime
        self._periodic = Periodic(
            "maintenance", lambda: asyncio.to_thread(runtime.run_maintenance), interval
        )

    @property
    def interval(self) -> float:
        return self._periodic.interval

    async def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()


def socket_mode_workspaces(runtime: Runtime) -> int:
    """Active workspaces with an app token: the ones serve's Socket Mode worker connects."""
    from sqlalchemy import func, select

    from app.store.models import Workspace

    with runtime.sessions() as session:
        return int(
            session.execute(
                select(func.count()).where(
                    Workspace.app_token_enc.is_not(None), Workspace.status == "active"
                )
            ).scalar_one()
        )


def run(args: argparse.Namespace) -> int:
    import uvicorn

    # The composition root imports every adapter: only commands that build a runtime
    # pay for that.
    from app.assembly import build_runtime
    from app.web import create_app

    settings = settings_or_exit(log_format="json")
    problems = settings.production_problems()
    if problems:
        fail(
            "refusing to start outside LOCAL_DEVELOPMENT",
            [*problems, "to try syncbot on this machine instead: `make run` (or `syncbot demo`)"],
        )
        return EXIT_CONFIG
    try:
        runtime = build_runtime(settings)
    except ConfigError as exc:
        fail("invalid configuration", exc.problems)
        return EXIT_CONFIG
    try:
        connect_or_exit(settings, runtime.engine, wait=args.wait_db)
        if current_revisions(runtime.engine) != head_revisions():
            if not settings.should_auto_migrate:
                fail(
                    "the database schema is not at head",
                    ["run `syncbot migrate` (or set SYNCBOT_AUTO_MIGRATE=true)"],
                )
                return EXIT_FAILED
            upgrade(runtime.engine)
        runtime.add_worker(MaintenanceTicker(runtime))
        app = create_app(runtime)
        port = args.port or settings.port
        loop = loop_name()
        found = parts(settings, socket_workspaces=socket_mode_workspaces(runtime))
        log.info(
            summary(found),
            extra={"parts": {p.name: {"on": p.on, "why": p.why} for p in found}},
        )
        # Last before serving: what start-up built stays out of every later collection.
        frozen = freeze_startup_heap()
        log.info(
            "serving",
            extra={
                "host": args.host,
                "port": port,
                "backend": runtime.engine.dialect.name,
                "dispatch": settings.dispatch,
                "event_loop": loop,
                "frozen_objects": frozen,
            },
        )
        if runtime.engine.dialect.name == "sqlite":
            # Claims on SQLite are serialized by its single writer: more processes on one file
            # only queue behind each other's locks. PostgreSQL or MariaDB scale out instead.
            log.info("SQLite is single-writer: run one syncbot serve per database file")
        # log_config=None keeps our JSON handler; uvicorn's loggers propagate to it.
        uvicorn.run(
            app,
            host=args.host,
            port=port,
            log_config=None,
            access_log=False,
            loop=loop,
            **SERVER_LIMITS,
        )
        return 0
    finally:
        runtime.close()
