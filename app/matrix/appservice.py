"""The application-service API the homeserver calls, as Starlette routes on our one app.

``PUT /_matrix/app/v1/transactions/{txnId}`` processes the events in order and answers 200 only
once every event is durably relayed; the transaction id is then recorded in the database, so a
replay (the homeserver retries until it sees a 2xx, also across our restarts) is answered
without processing anything twice. Within a transaction each event is additionally claimed by
event id through the relay, so a transaction that failed half way is safe to replay.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.errors import RemoteError
from app.jsonbody import MalformedJson, json_object
from app.matrix.bridge import MatrixBridge
from app.matrix.event_schema import MalformedEvent, validate
from app.matrix.ids import BridgeIds
from app.store.models_matrix import MatrixTransaction
from app.store.rows import affected

log = logging.getLogger("syncbot.matrix.appservice")

PREFIX = "/_matrix/app/v1"
UserQuery = Callable[[str], Awaitable[bool]]
AliasQuery = Callable[[str], Awaitable[bool]]


# Homeservers replay a transaction until it is acknowledged, within hours at most.
TRANSACTION_RETENTION = timedelta(days=7)


def purge_matrix_transactions(sessions: sessionmaker[Session]) -> int:
    """Forget processed appservice transactions older than the retention (a maintenance task)."""
    cutoff = datetime.now(UTC) - TRANSACTION_RETENTION
    with sessions() as s, s.begin():
        result = s.execute(
            delete(MatrixTransaction).where(MatrixTransaction.processed_at < cutoff)
        )
        return affected(result)


def _error(status: int, errcode: str, message: str) -> JSONResponse:
    return JSONResponse({"errcode": errcode, "error": message}, status_code=status)


class AppserviceApi:
    """Routes of the appservice API with the hs_token check and database dedupe."""

    def __init__(
        self,
        *,
        hs_token: str,
        ids: BridgeIds,
        sessions: sessionmaker[Session],
        bridge: MatrixBridge,
        query_user: UserQuery,
        query_alias: AliasQuery,
    ) -> None:
        self._token = hs_token.encode()
        self._ids = ids
        self._sessions = sessions
        self._bridge = bridge
        self._query_user = query_user
        self._query_alias = query_alias
        # The homeserver sends one transaction at a time; the lock keeps events of concurrent
        # replays (a retry racing a slow first attempt) from interleaving within a room.
        self._lock = asyncio.Lock()
        # Events skipped as malformed since start (the transaction was still acknowledged).
        self.malformed_events = 0

    @property
    def routes(self) -> list[Route]:
        out = []
        for base in (PREFIX, ""):
            out += [
                Route(f"{base}/transactions/{{txn_id}}", self.transaction, methods=["PUT"]),
                Route(f"{base}/users/{{user_id}}", self.user, methods=["GET"]),
                Route(f"{base}/rooms/{{alias}}", self.room, methods=["GET"]),
            ]
        out.append(Route(f"{PREFIX}/ping", self.ping, methods=["POST"]))
        return out

    def _auth(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        if token is None:
            token = request.query_params.get("access_token")
        if not token:
            return _error(401, "M_UNAUTHORIZED", "missing hs_token")
        if not hmac.compare_digest(token.encode(), self._token):
            return _error(403, "M_FORBIDDEN", "wrong hs_token")
        return None

    def _seen(self, txn_id: str) -> bool:
        with self._sessions() as s:
            return s.get(MatrixTransaction, txn_id) is not None

    def _record(self, txn_id: str, count: int) -> None:
        try:
            with self._sessions() as s, s.begin():
                s.add(MatrixTransaction(txn_id=txn_id[:255], events=count))
        except IntegrityError:
            pass  # a concurrent replay finished first; both processed the same claims

    async def transaction(self, request: Request) -> Response:
        if (refused := self._auth(request)) is not None:
            return refused
        txn_id = request.path_params["txn_id"]
        if len(txn_id) > 255:
            return _error(400, "M_INVALID_PARAM", "transaction id too long")
        try:
            body = json_object(await request.body())
        except MalformedJson as exc:
            return _error(400, "M_NOT_JSON", str(exc))
        events = body.get("events")
        if not isinstance(events, list):
            return _error(400, "M_BAD_JSON", "events must be a list")
        async with self._lock:
            if await asyncio.to_thread(self._seen, txn_id):
                return JSONResponse({})
            failed = await self._handle_all(events, self._bridge.handle, txn_id)
            if failed is not None:
                return failed
            await asyncio.to_thread(self._record, txn_id, len(events))
        return JSONResponse({})

    async def handle_missed(self, events: list[dict[str, Any]]) -> int | None:
        """Process events the homeserver never pushed (the catch-up sweep), serially with the
        pushed transactions; how many were relayed, None when one failed in a way worth
        retrying."""
        relayed = 0

        async def one(event: dict[str, Any]) -> None:
            nonlocal relayed
            relayed += await self._bridge.handle_missed(event)

        async with self._lock:
            failed = await self._handle_all(events, one, "catch-up")
        return None if failed is not None else relayed

    async def _handle_all(
        self,
        events: list[Any],
        handler: Callable[[dict[str, Any]], Awaitable[None]],
        txn_id: str,
    ) -> Response | None:
        """Hand each event to ``handler`` in order; the error answer to give, or None."""
        for raw in events:
            try:
                event = validate(raw)
            except MalformedEvent as exc:
                self._skip(raw, str(exc))
                continue
            try:
                await handler(event)
            except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
                # A shape the validating layer let through and the bridge could not read:
                # skipping it is what keeps one user's event from stalling every room.
                log.exception("event could not be read", extra={"txn": txn_id})
                self._skip(raw, f"{type(exc).__name__}: {exc}")
                continue
            except RemoteError as exc:
                if not exc.retryable:
                    log.warning("event dropped", extra={"error": str(exc)})
                    continue
                log.warning("transaction deferred", extra={"error": str(exc)})
                return _error(503, "M_UNKNOWN", "temporarily unavailable, retry")
            except Exception:
                # Unanswered, the homeserver replays the transaction; claims skip what
                # was already relayed.
                log.exception("transaction failed", extra={"txn": txn_id})
                return _error(500, "M_UNKNOWN", "internal error")
        return None

    def _skip(self, raw: Any, reason: str) -> None:
        self.malformed_events += 1
        event = raw if isinstance(raw, dict) else {}
        log.warning(
            "malformed event skipped",
            extra={
                "event_id": str(event.get("event_id"))[:255],
                "room": str(event.get("room_id"))[:255],
                "reason": reason[:200],
            },
        )

    async def user(self, request: Request) -> Response:
        if (refused := self._auth(request)) is not None:
            return refused
        user_id = request.path_params["user_id"]
        if not self._ids.is_ours(user_id):
            return _error(404, "M_NOT_FOUND", "no such user")
        try:
            if await self._query_user(user_id):
                return JSONResponse({})
        except ValueError:
            pass  # not a valid user id after all
        except RemoteError as exc:
            log.warning("user query failed", extra={"error": str(exc)})
            return _error(503, "M_UNKNOWN", "temporarily unavailable, retry")
        return _error(404, "M_NOT_FOUND", "no such user")

    async def room(self, request: Request) -> Response:
        if (refused := self._auth(request)) is not None:
            return refused
        try:
            found = await self._query_alias(request.path_params["alias"])
        except Exception:
            log.exception("alias query failed")
            found = False
        if found:
            return JSONResponse({})
        return _error(404, "M_NOT_FOUND", "no such room")

    async def ping(self, request: Request) -> Response:
        if (refused := self._auth(request)) is not None:
            return refused
        return JSONResponse({})


__all__ = ["PREFIX", "AppserviceApi"]
