"""Every public route under malformed bodies, headers and sizes: no 5xx, flat memory, healthy.

Seeded and bounded: hypothesis runs derandomized (the same requests on every run) for a fixed
number of examples, each one request against the whole app in this process. Authenticated
routes are driven both ways — with a valid Slack signature, hs_token or peer signature over the
malformed body, and without — so the checks behind authentication are fuzzed too. The
homeserver is a loopback stand-in that answers everything; Slack's API is a closed port.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import app.oidc
from app.federation.service import EVENTS_PATH, KEYS_PATH, PAIR_PATH
from tests.oidc_keys import jwks
from tests.security.hostile import HS_TOKEN, PEER_ANCHOR, ROOM, Hostile, hostile_app

# A longer or differently seeded local run: SYNCBOT_FUZZ_EXAMPLES=5000 SYNCBOT_FUZZ_SEED=7.
EXAMPLES = int(os.environ.get("SYNCBOT_FUZZ_EXAMPLES", "300"))
SEED = os.environ.get("SYNCBOT_FUZZ_SEED")
MIB = 1024 * 1024
RSS_GROWTH_LIMIT = 64 * MIB  # a single body read whole (the old /slack/events) is 100+ MiB


class _Homeserver(BaseHTTPRequestHandler):
    """Answers every client-server call with a body carrying the fields mautrix reads."""

    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = urlsplit(self.path).path
        if "/state/" in path:
            self._state(path)
            return
        self._json(
            {
                "event_id": "$stand-in",
                "room_id": "!stand-in:hs.example",
                "user_id": "@slackbot:hs.example",
                "content_uri": "mxc://hs.example/stand-in",
                "joined": {},
                "chunk": [],
            }
        )

    def _state(self, path: str) -> None:
        # GET /rooms/{room}/state/{type}/{key}?format=event: the room lets the bot do anything.
        event_type = path.split("/state/", 1)[1].split("/", 1)[0]
        content: dict[str, Any] = {"room_version": "10", "creator": "@slackbot:hs.example"}
        if event_type == "m.room.power_levels":
            content = {"users_default": 100, "events_default": 0, "state_default": 0}
        self._json(
            {
                "type": event_type,
                "state_key": "",
                "sender": "@slackbot:hs.example",
                "origin_server_ts": 1,
                "event_id": "$state",
                "room_id": "!stand-in:hs.example",
                "content": content,
            }
        )

    def _json(self, data: dict[str, Any]) -> None:
        body = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hostile_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hostile]:
    monkeypatch.setattr(app.oidc, "fetch_google_keys", jwks)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Homeserver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with hostile_app(tmp_path, matrix_homeserver_url=url) as h:
            yield h
    finally:
        server.shutdown()
        server.server_close()


# -- what the attacker sends ---------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["", "x", "%", "../..", "\x00", "T1", "C1", "$e:hs", ROOM, "mxc://a/b"])
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=16,
)


def _slack_event(event: Any) -> dict[str, Any]:
    return {
        "type": "event_callback",
        "team_id": "T0LOCAL",
        "api_app_id": "A1",
        "event_id": "Ev1",
        "event_time": 1,
        "event": event,
    }


SLACK_TEMPLATES: list[dict[str, Any]] = [
    {"type": "url_verification", "challenge": "c"},
    _slack_event(
        {"type": "message", "channel": "C0LOCAL", "user": "U1", "text": "hi", "ts": "1.1"}
    ),
    _slack_event(
        {
            "type": "message",
            "subtype": "bot_message",
            "channel": "C0LOCAL",
            "bot_id": "B9",
            "icons": {"image_48": "http://127.0.0.1:1/a.png"},
            "ts": "1.2",
        }
    ),
    _slack_event({"type": "message", "subtype": "message_changed", "channel": "C0LOCAL"}),
    _slack_event({"type": "reaction_added", "item": {"type": "message", "channel": "C0LOCAL"}}),
    _slack_event({"type": "app_home_opened", "user": "U1", "tab": "home"}),
    _slack_event({"type": "channel_rename", "channel": {"id": "C0LOCAL", "name": "x"}}),
    _slack_event({"type": "app_uninstalled"}),
    _slack_event({"type": "tokens_revoked", "tokens": {"bot": ["U0BOT"]}}),
    {"type": "block_actions", "user": {"id": "U1"}, "team": {"id": "T0LOCAL"}, "actions": []},
    {"type": "view_submission", "team": {"id": "T0LOCAL"}, "view": {"callback_id": "x"}},
    {"type": "shortcut", "callback_id": "x", "team": {"id": "T0LOCAL"}},
]
PEER_TEMPLATES: list[dict[str, Any]] = [
    {
        "kind": "post",
        "uid": "u",
        "anchor": PEER_ANCHOR,
        "native_id": "p",
        "author": {"name": "n", "avatar_url": "http://127.0.0.1:1/a.png"},
        "body": {"v": 1, "doc": ["hi"]},
        "files": [{"native_id": "f", "name": "f", "url": "data:text/plain;base64,aGk="}],
    },
    {"kind": "edit", "uid": "u", "anchor": PEER_ANCHOR, "native_id": "p", "body": {"v": 1}},
    {"kind": "react", "uid": "u", "anchor": PEER_ANCHOR, "native_id": "p", "emoji": "x"},
    {"kind": "delete", "uid": "u", "anchor": PEER_ANCHOR, "native_id": "p"},
]
MATRIX_TEMPLATES: list[dict[str, Any]] = [
    {
        "type": "m.room.message",
        "event_id": "$m",
        "room_id": ROOM,
        "sender": "@alice:hs.example",
        "content": {
            "msgtype": "m.text",
            "body": "hi",
            "format": "org.matrix.custom.html",
            "formatted_body": "<b>hi</b>",
            "m.relates_to": {"m.in_reply_to": {"event_id": "$x"}},
        },
    },
    {
        "type": "m.room.message",
        "event_id": "$f",
        "room_id": ROOM,
        "sender": "@alice:hs.example",
        "content": {"msgtype": "m.file", "url": "mxc://hs.example/f", "info": {"size": 1}},
    },
    {
        "type": "m.room.member",
        "event_id": "$j",
        "room_id": "!new:hs.example",
        "sender": "@alice:hs.example",
        "state_key": "@slackbot:hs.example",
        "content": {"membership": "invite"},
    },
    {
        "type": "m.reaction",
        "event_id": "$r",
        "room_id": ROOM,
        "sender": "@alice:hs.example",
        "content": {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$m", "key": "👍"}},
    },
    {"type": "m.room.redaction", "event_id": "$d", "room_id": ROOM, "redacts": "$m"},
    {
        "type": "m.room.message",
        "event_id": "$c",
        "room_id": "!dm:hs.example",
        "sender": "@alice:hs.example",
        "content": {"msgtype": "m.text", "body": "!slack help"},
    },
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    node = copy
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = new
    return copy


@st.composite
def mutated(draw: st.DrawFn, templates: list[dict[str, Any]]) -> Any:
    """A valid payload with one field (or the whole thing) replaced by arbitrary JSON."""
    template = draw(st.sampled_from(templates))
    if draw(st.booleans()):
        return template
    path = draw(st.sampled_from(_paths(template)))
    return _replace(template, path, draw(json_values))


def _encode(data: Any, how: str) -> bytes:
    if how == "json":
        return json.dumps(data).encode()
    if how == "form":
        return urlencode({"payload": json.dumps(data)}).encode()
    return json.dumps(data).encode()[:-1]  # truncated


raw_bodies = st.one_of(
    st.binary(max_size=256),
    st.sampled_from(
        [b"", b"null", b"[]", b'"x"', b"{", b"[" * 3000, b"\xff\xfe", b"payload=%7B", b"{}" * 400]
    ),
)


@st.composite
def requests(draw: st.DrawFn, h: Hostile) -> dict[str, Any]:
    """One request: a route, a body (valid-shaped or not), authenticated or not."""
    route = draw(
        st.sampled_from(
            [
                "slack",
                "slack",
                "peer",
                "peer",
                "pair",
                "keys",
                "matrix",
                "matrix",
                "matrix_query",
                "oauth",
                "tick",
                "get",
            ]
        )
    )
    signed = draw(st.booleans())
    sign: str | None = None
    headers: dict[str, str] = {}
    method, path = "POST", "/"
    if route == "slack":
        how = draw(st.sampled_from(["json", "form", "cut"]))
        body = (
            _encode(draw(mutated(SLACK_TEMPLATES)), how)
            if draw(st.integers(0, 4))
            else draw(raw_bodies)
        )
        path = "/slack/events"
        headers = {"Content-Type": "application/json"}
        if how == "form":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if draw(st.integers(0, 6)) == 0:
            headers["X-Slack-Request-Timestamp"] = draw(
                st.sampled_from(["", "abc", "-1", "99999999999999999999", "1.5", "0"])
            )
        sign = "slack" if signed else None
    elif route in ("peer", "pair", "keys"):
        data = draw(mutated(PEER_TEMPLATES)) if route == "peer" else draw(json_values)
        body = json.dumps(data).encode() if draw(st.integers(0, 4)) else draw(raw_bodies)
        path = {"peer": EVENTS_PATH, "pair": PAIR_PATH, "keys": KEYS_PATH}[route]
        headers = {"Content-Type": "application/json"}
        sign = "peer" if signed else None
        if draw(st.integers(0, 5)) == 0:
            name = draw(st.sampled_from(["X-Syncbot-Signature", "X-Syncbot-Timestamp"]))
            headers[name] = draw(st.text(max_size=30))
    elif route == "matrix":
        method = "PUT"
        events = draw(st.lists(mutated(MATRIX_TEMPLATES), max_size=4))
        body = json.dumps({"events": events}).encode() if draw(st.integers(0, 4)) else b"{"
        txn = draw(st.text(max_size=20)) or "t"
        path = f"/_matrix/app/v1/transactions/{quote(txn, safe='')}"
        headers = {"Authorization": f"Bearer {HS_TOKEN}"} if signed else {}
    elif route == "matrix_query":
        method, body = "GET", b""
        kind = draw(st.sampled_from(["users", "rooms"]))
        target = draw(
            st.sampled_from(["@slack_t1_u1:hs.example", "#slack_T0LOCAL_C0LOCAL:hs.example"])
            | st.text(max_size=30)
        )
        path = f"/_matrix/app/v1/{kind}/{quote(target, safe='')}"
        headers = {"Authorization": f"Bearer {HS_TOKEN}"} if signed else {}
    elif route == "oauth":
        method, body = "GET", b""
        query = draw(st.dictionaries(st.sampled_from(["code", "state", "error"]), st.text()))
        path = draw(st.sampled_from(["/slack/install", "/slack/oauth_redirect"]))
        path += "?" + urlencode(query)
        headers = {"Cookie": f"slack-app-oauth-state={quote(draw(st.text(max_size=30)))}"}
    elif route == "tick":
        body = b""
        path = draw(st.sampled_from(["/internal/tick", "/internal/deliver"]))
        token = draw(st.text(max_size=80))
        headers = {"Authorization": "Bearer " + quote(token)}
    else:
        method, body = "GET", b""
        path = draw(
            st.sampled_from(
                [
                    "/health",
                    "/metrics",
                    "/api/federation/ping",
                    "/avatars/matrix/hs.example/abc?sig=00",
                    "/nowhere",
                    "/slack/events",
                ]
            )
        )
    return {"method": method, "path": path, "headers": headers, "body": body, "sign": sign}


def _header(value: str) -> bytes:
    # Any byte a client can put in a header value (no line breaks: that ends the header).
    return value.encode("utf-8", "replace").translate(None, b"\r\n\x00")


def _send(h: Hostile, req: dict[str, Any]) -> Any:
    headers = dict(req["headers"])
    body = req["body"]
    if req["sign"] == "slack":
        headers = h.slack_headers(body) | headers
    elif req["sign"] == "peer":
        # The fuzzed header (if any) replaces the genuine one.
        headers = h.peer_headers(body, req["path"]) | headers
    return h.client.request(
        req["method"],
        req["path"],
        content=body or None,
        headers={k: _header(v) for k, v in headers.items()},
        follow_redirects=False,
    )


# -- oversized, sent without holding them in memory ----------------------------------------


def _stream_oversized(h: Hostile, method: str, path: str, total: int) -> int:
    """Offer ``total`` bytes in 256 KiB chunks without a Content-Length; the status."""
    chunk = b"{" * (256 * 1024)
    status, _ = h.stream_chunked(method, path, chunk, chunks=-(-total // len(chunk)))
    return status


class PeakRss:
    """The process's peak resident set since :meth:`reset` (Linux ``VmHWM``)."""

    def reset(self) -> None:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS

    def peak(self) -> int:
        with open("/proc/self/status") as f:
            return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1)) * 1024  # type: ignore[union-attr]

    def current(self) -> int:
        with open("/proc/self/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) * 1024  # type: ignore[union-attr]


def test_every_route_survives_malformed_input(hostile_up: Hostile) -> None:
    h = hostile_up
    failures: list[str] = []
    statuses: dict[int, int] = {}

    @seed(int(SEED or 0))
    @settings(
        max_examples=EXAMPLES,
        derandomize=SEED is None,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def drive(data: st.DataObject) -> None:
        req = data.draw(requests(h))
        answer = _send(h, req)
        statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
        if answer.status_code >= 500:
            failures.append(
                f"{req['method']} {req['path'][:80]} -> {answer.status_code} "
                f"{answer.text[:120]} body={req['body'][:160]!r}"
            )

    rss = PeakRss()
    drive()  # warm-up and the fuzz itself; memory is measured around the oversized part
    assert not failures, "\n".join(failures[:20])
    assert sum(statuses.values()) >= EXAMPLES // 2
    assert any(400 <= s < 500 for s in statuses) and 200 in statuses

    rss.reset()
    baseline = rss.current()
    for method, path in [
        ("POST", "/slack/events"),
        ("POST", "/api/federation/pair"),
        ("POST", "/api/federation/events"),
        ("PUT", "/_matrix/app/v1/transactions/huge"),
        ("POST", "/internal/deliver"),
        ("POST", "/internal/tick"),
    ]:
        status = _stream_oversized(h, method, path, total=200 * MIB)
        assert 400 <= status < 500, (path, status)
        declared = h.client.request(
            method, path, content=b"{}", headers={"Content-Length": str(200 * MIB)}
        )
        assert 400 <= declared.status_code < 500
    grown = rss.peak() - baseline
    assert grown < RSS_GROWTH_LIMIT, f"peak RSS grew by {grown / MIB:.0f} MiB"

    health = h.client.get("/health")
    assert health.status_code == 200, health.text
    assert health.json()["status"] == "ok", health.json()
    assert health.json()["database"] == "ok"


def test_the_oidc_routes_are_fuzzed_with_a_reachable_key_set(hostile_up: Hostile) -> None:
    # Sanity for the fuzz above: a real token is accepted, so refusals are not an outage.
    from tests.oidc_keys import id_token

    token = id_token(audience="https://syncbot.example", email="someone@else.example")
    answer = hostile_up.client.post("/internal/tick", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401
    assert "expected service account" in answer.json()["error"]
    assert urlsplit(hostile_up.runtime.settings.public_url or "").hostname == "syncbot.example"
