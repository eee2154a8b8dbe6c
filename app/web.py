"""The one ASGI app: health, request ids, JSON errors, and the routes adapters add.

``syncbot serve`` runs it under uvicorn and the Lambda entry wraps the same app, so both shapes
answer identically.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.bodylimit import BodyLimitMiddleware
from app.logs import current_request_id, new_request_id, request_context
from app.runtime import Runtime
from app.store.migrate import current_revisions, head_revisions

log = logging.getLogger("syncbot.web")

REQUEST_ID_HEADER = "x-request-id"
# An incoming id is echoed only when it is short and plain (it ends up in logs).
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def check_health(runtime: Runtime) -> tuple[bool, dict[str, Any]]:
    """Probe the database and the schema revision (blocking; run it off the event loop).

    Returns:
        ``(healthy, body)`` where ``body`` is the JSON the health route answers with.
    """
    body: dict[str, Any] = {"status": "ok", "database": "ok", "schema": "head"}
    try:
        with runtime.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        log.warning("health: database unreachable", extra={"error": type(exc).__name__})
        return False, {"status": "error", "database": "unreachable", "schema": "unknown"}
    try:
        current = current_revisions(runtime.engine)
    except Exception as exc:
        log.warning("health: schema check failed", extra={"error": type(exc).__name__})
        return False, {"status": "error", "database": "ok", "schema": "unknown"}
    expected = head_revisions()
    if current != expected:
        body.update(
            status="error",
            schema="behind" if current else "missing",
            current=sorted(current),
            expected=sorted(expected),
        )
        return False, body
    return True, body


class RequestIdMiddleware:
    """Gives each HTTP request an id (echoing a sane ``X-Request-ID``) bound to its logs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        for name, value in scope.get("headers", ()):
            if name == REQUEST_ID_HEADER.encode():
                incoming = value.decode("latin-1")
                break
        rid = incoming if _SAFE_ID.match(incoming) else new_request_id()
        status = 500
        started_response = False
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status = message["status"]
                started_response = True
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        with request_context(rid):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                if started_response:
                    raise
                # Answered here, inside the request context, so the error carries its id.
                response = await _server_error(Request(scope), exc)
                await response(scope, receive, send_with_id)
            finally:
                # The query string can carry tokens (OAuth codes); log the path only. Probes
                # hit /health every few seconds: keep them out of INFO logs.
                log.log(
                    logging.DEBUG if scope.get("path") == "/health" else logging.INFO,
                    "request",
                    extra={
                        "method": scope.get("method"),
                        "path": scope.get("path"),
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    },
                )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    body = {"error": exc.detail, "status": exc.status_code, "request_id": current_request_id()}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    # The traceback goes to the (scrubbed) log, never to the client.
    log.error("unhandled error", exc_info=exc, extra={"path": request.url.path})
    body = {"error": "internal server error", "status": 500, "request_id": current_request_id()}
    return JSONResponse(body, status_code=500)


def create_app(
    runtime: Runtime, routes: Sequence[BaseRoute] = (), *, lifespan: bool = True
) -> Starlette:
    """Build the ASGI app.

    Args:
        runtime: the process runtime; its ``routes`` are served and, with ``lifespan``, its
            ``workers`` are started on startup and stopped on shutdown.
        routes: extra routes or mounts, served after the runtime's own.
        lifespan: whether this app runs the runtime's workers (off for Lambda, where a
            request's process may freeze at any time and the scheduler drives the work).
    """

    async def health(request: Request) -> JSONResponse:
        healthy, body = await run_in_threadpool(check_health, runtime)
        if healthy:
            # The indicators of the seed: connections, outbox, latency. A failed workspace
            # degrades the status but not the probe: a restart cannot fix a revoked token.
            from app.health import health_summary

            _ok, details = await run_in_threadpool(health_summary, runtime)
            body = {**body, **details, "status": details.get("status", body["status"])}
        return JSONResponse(body, status_code=200 if healthy else 503)

    @asynccontextmanager
    async def run_workers(app: Starlette) -> AsyncIterator[None]:
        started: list[Any] = []
        try:
            if lifespan:
                for worker in runtime.workers:
                    await worker.start()
                    started.append(worker)
            yield
        finally:
            for worker in reversed(started):
                try:
                    await worker.stop()
                except Exception:
                    log.exception("worker failed to stop", extra={"worker": repr(worker)})

    all_routes: list[BaseRoute] = [
        Route("/health", health, methods=["GET"]),
        *runtime.routes,
        *routes,
    ]
    app = Starlette(
        routes=all_routes,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        lifespan=run_workers,
    )
    # Inside the request id (a refusal carries one), outside every route.
    app.add_middleware(BodyLimitMiddleware)
    if runtime.metrics is not None:
        from app.metrics import HttpMetricsMiddleware

        app.add_middleware(HttpMetricsMiddleware, metrics=runtime.metrics.http, routes=all_routes)
    app.add_middleware(RequestIdMiddleware)
    app.state.runtime = runtime
    return app
