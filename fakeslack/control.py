"""The control API: another process seeds the fake, injects faults and reads what was posted.

Mounted under ``/_fake/`` beside Slack's own routes (Slack has no such paths, so nothing a client
of the real API could call collides with it). Handlers run on the fake's loop, where its state
lives. Bodies and answers are JSON; bad input answers 400 with ``{"ok": false, "error": ...}``.

=================================  ============================================================
``GET /_fake/state``               URLs, signing secret, app token, workspaces (tokens, ids)
``POST /_fake/workspaces``         ``{"workspaces": N, "channels": 1, "users": 1}`` or one
                                   ``{"team_id", "name", "socket_mode", "channels": [{"id",
                                   "name"}], "users": [{"id", "name", "email"}]}``
``POST /_fake/faults``             ``{"method": "chat.postMessage", "faults": ["429:2", "500",
                                   "timeout", "drop_after"], "probability": 0.2}`` (queued in
                                   order without ``probability``; see :meth:`Fault.parse`)
``DELETE /_fake/faults``           forget faults and latency
``POST /_fake/latency``            ``{"ms": 50, "method": "*"}``
``POST /_fake/events_url``         ``{"url": ..., "team_id": ...}`` where events are POSTed
``POST /_fake/messages``           a person posts: ``{"team_id", "channel", "user", "text",
                                   "thread_ts"}`` -> ``{"ts"}``
``GET /_fake/messages``            ``?team_id=&channel=`` -> ``{"messages": [wire, ...]}``
``GET /_fake/calls``               ``?method=&since=`` -> ``{"calls": [...], "next": n}``
``GET /_fake/events``              ``?since=`` -> ``{"events": [envelope, ...], "pending": n}``
=================================  ============================================================
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .faults import Fault
from .model import Workspace

if TYPE_CHECKING:
    from .fake import FakeSlack

PREFIX = "/_fake"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadRequest(ValueError):
    """Control input the fake cannot act on."""


def add_routes(app: web.Application, fake: FakeSlack) -> None:
    """Mount the control API of ``fake`` on ``app``."""
    api = _Control(fake)
    r = app.router
    r.add_get(f"{PREFIX}/state", _guard(api.state))
    r.add_post(f"{PREFIX}/workspaces", _guard(api.workspaces))
    r.add_post(f"{PREFIX}/faults", _guard(api.faults))
    r.add_delete(f"{PREFIX}/faults", _guard(api.clear_faults))
    r.add_post(f"{PREFIX}/latency", _guard(api.latency))
    r.add_post(f"{PREFIX}/events_url", _guard(api.events_url))
    r.add_post(f"{PREFIX}/messages", _guard(api.post_message))
    r.add_get(f"{PREFIX}/messages", _guard(api.messages))
    r.add_get(f"{PREFIX}/calls", _guard(api.calls))
    r.add_get(f"{PREFIX}/events", _guard(api.events))


def _guard(handler: Handler) -> Handler:
    async def run(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except (BadRequest, KeyError, ValueError, TypeError) as exc:
            return web.json_response(
                {"ok": False, "error": f"{type(exc).__name__}: {exc}"}, status=400
            )

    return run


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read() or b"{}")
    except ValueError as exc:
        raise BadRequest("body is not JSON") from exc
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


def workspace_info(ws: Workspace) -> dict[str, Any]:
    """What a client of another process needs to act as the app in ``ws``."""
    inst = ws.installation
    return {
        "team_id": ws.id,
        "name": ws.name,
        "bot_token": inst.bot_token if inst else None,
        "bot_user_id": inst.bot_user_id if inst else None,
        "bot_id": inst.bot_id if inst else None,
        "socket_mode": bool(inst and inst.socket_mode),
        "channels": list(ws.channels),
        "users": [u for u in ws.users if not ws.users[u].is_bot],
    }


class _Control:
    def __init__(self, fake: FakeSlack) -> None:
        self.fake = fake

    async def state(self, request: web.Request) -> web.Response:
        return web.json_response(self.fake.describe())

    async def workspaces(self, request: web.Request) -> web.Response:
        body = await _body(request)
        if "workspaces" in body:
            made = self.fake.populate(
                int(body["workspaces"]),
                channels=int(body.get("channels", 1)),
                users=int(body.get("users", 1)),
                socket_mode=bool(body.get("socket_mode", False)),
            )
        else:
            team = str(body["team_id"])
            self.fake.add_workspace(
                team, body.get("name"), socket_mode=bool(body.get("socket_mode", False))
            )
            for user in body.get("users", []):
                self.fake.add_user(
                    team, str(user["id"]), str(user["name"]), email=user.get("email")
                )
            for ch in body.get("channels", []):
                self.fake.add_channel(
                    team, str(ch["id"]), str(ch["name"]), members=list(ch.get("members", []))
                )
            made = [self.fake.state.workspaces[team]]
        return web.json_response({"ok": True, "workspaces": [workspace_info(w) for w in made]})

    async def faults(self, request: web.Request) -> web.Response:
        body = await _body(request)
        method = str(body.get("method", "*"))
        specs = body.get("faults")
        if not isinstance(specs, list) or not specs:
            raise BadRequest("faults must be a non-empty list")
        faults = [Fault.parse(spec) for spec in specs]
        if "probability" in body:
            probability = float(body["probability"])
            if not 0.0 <= probability <= 1.0:
                raise BadRequest("probability must be within [0, 1]")
            self.fake.faults.randomly(method, probability, *faults)
        else:
            self.fake.faults.queue(method, *faults)
        return web.json_response({"ok": True})

    async def clear_faults(self, request: web.Request) -> web.Response:
        self.fake.faults.clear()
        return web.json_response({"ok": True})

    async def latency(self, request: web.Request) -> web.Response:
        body = await _body(request)
        seconds = float(body["ms"]) / 1000 if "ms" in body else float(body["seconds"])
        if seconds < 0:
            raise BadRequest("latency must not be negative")
        self.fake.faults.add_latency(seconds, str(body.get("method", "*")))
        return web.json_response({"ok": True})

    async def events_url(self, request: web.Request) -> web.Response:
        body = await _body(request)
        url = body.get("url")
        if body.get("team_id"):
            self.fake.route_events(str(body["team_id"]), url)
        else:
            self.fake.app_url = url
        return web.json_response({"ok": True})

    async def post_message(self, request: web.Request) -> web.Response:
        body = await _body(request)
        ts = self.fake.post_message(
            str(body["team_id"]),
            str(body["channel"]),
            str(body["user"]),
            str(body["text"]),
            thread_ts=body.get("thread_ts"),
        )
        return web.json_response({"ok": True, "ts": ts})

    async def messages(self, request: web.Request) -> web.Response:
        q = request.query
        ws = self.fake.state.workspaces[q["team_id"]]
        msgs = self.fake.messages(ws.id, q["channel"])
        return web.json_response({"ok": True, "messages": [m.wire(ws.files) for m in msgs]})

    async def calls(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since", 0))
        method = request.query.get("method")
        calls = self.fake.state.calls
        out = [
            {
                "method": c.method,
                "team_id": c.team_id,
                "at": c.at,
                "fault": c.fault.kind if c.fault else None,
                "params": {k: v for k, v in c.params.items() if isinstance(v, str | int | float)},
            }
            for c in calls[since:]
            if method is None or c.method == method
        ]
        return web.json_response({"ok": True, "calls": out, "next": len(calls)})

    async def events(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since", 0))
        emitted = self.fake.events.emitted
        return web.json_response(
            {"ok": True, "events": emitted[since:], "pending": self.fake.events.pending}
        )
