"""``POST /internal/tick``: the scheduler's maintenance tick for hosts that sleep between
requests (Cloud Run). Authenticated by an OIDC token from an expected service account."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.oidc import OidcVerifier, TokenError

log = logging.getLogger("syncbot.tick")
TICK_PATH = "/internal/tick"


def tick_route(runtime: Any, verifier: OidcVerifier) -> Route:
    async def tick(request: Request) -> JSONResponse:
        try:
            await asyncio.to_thread(verifier.verify, request.headers.get("authorization"))
        except TokenError as exc:
            return JSONResponse({"error": str(exc)}, status_code=401)
        results = await asyncio.to_thread(runtime.run_maintenance)
        return JSONResponse({"ok": True, "results": results})

    return Route(TICK_PATH, tick, methods=["POST"])
