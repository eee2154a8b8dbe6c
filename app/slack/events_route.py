"""``POST /slack/events``: verify, claim, answer within Slack's 3 seconds, deliver what fits.

The claim and the outbox rows commit before the 200 goes out, so a retry of the same event
(``X-Slack-Retry-Num``) is recognised by its ``event_id`` and nothing is lost if we crash after
answering. Deliveries run inline only for what is left of the time budget; the dispatcher hands
the rest to the runtime's worker (serve's own loop, SQS on Lambda, Cloud Tasks on Cloud Run).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from slack_sdk.signature import SignatureVerifier
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from app.core.ingest import Ingest
from app.errors import RedeliveryRequested
from app.jsonbody import MAX_DEPTH, depth
from app.slack import payload_schema
from app.slack.inbound import RELAYED, EventTranslator
from app.slack.subscriptions import DELIVERED

log = logging.getLogger("syncbot.slack.events")

MAX_BODY = 1024 * 1024  # Slack event payloads are far smaller; anything bigger is not Slack.
ACK_BUDGET = 2.5  # seconds we allow ourselves before answering (Slack gives up at 3)

# Extra handlers for other callback types (interactivity, App Home, lifecycle) registered by
# other parts of the Slack adapter: (payload) -> optional response.
Handler = Callable[[dict[str, Any]], Awaitable[Response | None]]


class SlackEvents:
    def __init__(
        self,
        *,
        signing_secret: str,
        translator: EventTranslator,
        ingest: Ingest,
        inline_budget: float = ACK_BUDGET,
    ) -> None:
        self._verifier = SignatureVerifier(signing_secret)
        self._translator = translator
        self._ingest = ingest
        self._budget = inline_budget
        self.event_hooks: list[Handler] = []
        self.interaction_hooks: list[Handler] = []
        # Hooks by the event types they handle, checked against the subscriptions table.
        self._typed: list[tuple[frozenset[str], Handler]] = []

    def on(self, event_types: Iterable[str], hook: Handler) -> None:
        """Run ``hook`` for events of ``event_types`` (before the relay records them).

        Raises:
            ValueError: a type no subscription delivers (see :mod:`app.slack.subscriptions`).
        """
        types = frozenset(event_types)
        unknown = types - DELIVERED
        if unknown:
            raise ValueError(f"not subscribed in the manifest: {', '.join(sorted(unknown))}")
        self._typed.append((types, hook))

    def hooks_for(self, event_type: str) -> list[Handler]:
        """The hooks an event of ``event_type`` runs, in the order they run."""
        return [hook for types, hook in self._typed if event_type in types] + self.event_hooks

    def handled_types(self) -> frozenset[str]:
        """Every event type some hook or the relay handles."""
        typed = frozenset(t for types, _ in self._typed for t in types)
        return typed | RELAYED

    async def endpoint(self, request: Request) -> Response:
        started = time.monotonic()
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"error": "payload too large"}, status_code=413)
        try:
            body.decode("utf-8")  # the verifier decodes it, and raises on anything else
        except UnicodeDecodeError:
            return JSONResponse({"error": "body is not UTF-8"}, status_code=400)
        timestamp = request.headers.get("x-slack-request-timestamp", "")
        signature = request.headers.get("x-slack-signature", "")
        # is_valid compares in constant time and rejects timestamps outside 5 minutes; it
        # raises on a timestamp that is not an integer, so that is refused first.
        if (
            not timestamp.isascii()
            or not timestamp.isdigit()
            or len(timestamp) > 12
            or not signature.isascii()
            or not signature
            or not self._verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
        ):
            return JSONResponse({"error": "invalid signature"}, status_code=401)
        payload = _parse(body, request.headers.get("content-type", ""))
        if payload is None:
            return JSONResponse({"error": "malformed payload"}, status_code=400)
        return await self.handle_verified(payload, started=started)

    async def handle_verified(self, payload: dict[str, Any], *, started: float) -> Response:
        """Check a verified payload's shape, then :meth:`process` it (HTTP and Socket Mode).

        A payload of the wrong shape is a 400: acknowledged, so neither the Events API nor a
        Socket Mode connection redelivers it forever.
        """
        try:
            payload_schema.check(payload)
        except payload_schema.MalformedPayload as exc:
            log.warning("signed payload of the wrong shape", extra={"reason": str(exc)})
            return JSONResponse({"error": f"malformed payload: {exc}"}, status_code=400)
        try:
            return await self.process(payload, started=started)
        except (ValueError, TypeError, AttributeError, KeyError, IndexError):
            # Verified, but of a shape no handler could read: a 400 (not retried), logged with
            # its traceback so a shape Slack really sends gets fixed.
            log.exception("signed payload could not be read")
            return JSONResponse({"error": "malformed payload"}, status_code=400)

    async def process(self, payload: dict[str, Any], *, started: float | None = None) -> Response:
        """Handle a verified payload; the same path serves HTTP and Socket Mode envelopes."""
        started = time.monotonic() if started is None else started
        kind = payload.get("type")
        if kind == "url_verification":
            return PlainTextResponse(str(payload.get("challenge", "")))
        if kind != "event_callback":
            for hook in self.interaction_hooks:
                response = await hook(payload)
                if response is not None:
                    return response
            return Response(status_code=200)
        etype = str((payload.get("event") or {}).get("type") or "")
        try:
            for types, typed in self._typed:
                if etype in types:
                    await typed(payload)
            for hook in self.event_hooks:
                await hook(payload)
        except RedeliveryRequested as exc:
            # Not acknowledged: Slack sends the event again (Socket Mode: no ack on a 5xx).
            log.info("event left for redelivery", extra={"reason": str(exc)})
            return JSONResponse({"error": "not ready, retry"}, status_code=503)
        event = self._translator.translate(payload)
        if event is None:
            return Response(status_code=200)
        try:
            # Deliveries run inline for what is left of the ack budget.
            await self._ingest(event, deadline=started + self._budget)
        except Exception:
            # Nothing was half-recorded (the transaction rolled back): ask Slack to retry.
            log.exception("could not record event; asking Slack to retry")
            return JSONResponse({"error": "temporarily unavailable"}, status_code=503)
        return Response(status_code=200)


def _parse(body: bytes, content_type: str) -> dict[str, Any] | None:
    try:
        if "application/x-www-form-urlencoded" in content_type:
            form = parse_qs(body.decode())
            values = form.get("payload") or []
            raw = values[0] if values else None
            data = json.loads(raw) if raw else None
        else:
            data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(data, dict) or depth(data) > MAX_DEPTH:
        return None
    return data
