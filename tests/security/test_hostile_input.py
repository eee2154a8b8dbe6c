"""One test per High and Medium finding of the hostile-input probe (issue #22).

Each drives the app the way the attacker did — over HTTP, on loopback — and fails on the code
the probe ran against.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

import app.oidc
from app.core.endpoints import Endpoint
from app.core.events import FileRef
from app.egress import EgressPolicy, parse_networks
from app.errors import RemoteError
from app.federation import signing
from app.federation.service import EVENTS_PATH, PAIR_PATH
from app.matrix.ghosts import http_avatar_fetcher
from app.oidc import OidcVerifier, TokenError
from app.slack.files import slack_file_source
from app.store.models import Peer, ProcessedEvent, SyncEndpoint
from app.store.syncs import SyncAdmin
from tests.oidc_keys import id_token, jwks
from tests.security.hostile import (
    HS_TOKEN,
    PEER_ANCHOR,
    PEER_ID,
    ROOM,
    Hostile,
    dumps,
    hostile_app,
)
from tests.wait import wait_for

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


class Loopback:
    """A loopback HTTP server recording what it was sent (the SSRF target)."""

    def __init__(self, body: bytes = PNG, status: int = 200, port: int = 0) -> None:
        self.requests: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                outer.requests.append({k.lower(): v for k, v in self.headers.items()})
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(status)
                self.send_header(
                    "Content-Type", "application/json" if body[:1] == b"{" else "image/png"
                )
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def loopback() -> Iterator[Loopback]:
    server = Loopback()
    yield server
    server.close()


# -- High 1: federation peer hijack ---------------------------------------------------------


def _pair_body(h: Hostile, code: str, *, instance: str, key: Ed25519PrivateKey, url: str) -> bytes:
    return dumps(
        {
            "code": code,
            "instance": instance,
            "url": url,
            "public_key": signing.public_pem(key),
            "anchor": "slack:T9EVIL/C9EVIL",
        }
    )


def _code_of(invite: str) -> str:
    return json.loads(base64.urlsafe_b64decode(invite + "=" * (-len(invite) % 4)))["code"]


def test_a_pairing_code_cannot_take_over_a_paired_peer(hostile: Hostile) -> None:
    h = hostile
    # The attacker was invited into another sync, s2, and so holds a genuine pairing code.
    SyncAdmin(h.runtime.sessions).create("s2")
    SyncAdmin(h.runtime.sessions).add("s2", Endpoint.matrix("!other:hs.example"))
    code = _code_of(h.federation.invite("s2"))
    mallory = Ed25519PrivateKey.generate()
    body = _pair_body(h, code, instance=PEER_ID, key=mallory, url="https://evil.example")
    headers = h.peer_headers(body, PAIR_PATH, key=mallory)
    answer = h.client.post(PAIR_PATH, content=body, headers=headers)
    assert answer.status_code == 409, answer.text

    with h.runtime.sessions() as s:
        peer = s.execute(select(Peer).where(Peer.instance_id == PEER_ID)).scalar_one()
        assert peer.public_key == signing.public_pem(h.peer_key)
        assert peer.url == "https://peer-a.example"
    # Posting into s1 with the attacker's key is refused; the real peer still gets in.
    post = dumps(
        {
            "kind": "post",
            "uid": "u1",
            "anchor": PEER_ANCHOR,
            "native_id": "p1",
            "author": {"name": "Mallory"},
            "body": {"v": 1, "doc": ["hijacked"]},
        }
    )
    forged = h.peer_headers(post, EVENTS_PATH, key=mallory)
    assert h.client.post(EVENTS_PATH, content=post, headers=forged).status_code == 401
    genuine = h.peer_headers(post, EVENTS_PATH)
    assert h.client.post(EVENTS_PATH, content=post, headers=genuine).status_code == 200


@pytest.mark.parametrize("instance", ["%", "peer_a", "a/b", "", "x" * 65, "-a"])
def test_instance_ids_are_validated(hostile: Hostile, instance: str) -> None:
    h = hostile
    code = _code_of(h.federation.invite("fed"))
    key = Ed25519PrivateKey.generate()
    body = _pair_body(h, code, instance=instance, key=key, url="https://new.example")
    headers = h.peer_headers(body, PAIR_PATH, key=key, instance=instance)
    assert h.client.post(PAIR_PATH, content=body, headers=headers).status_code == 400
    with h.runtime.sessions() as s:
        assert s.execute(select(Peer.instance_id)).scalars().all() == [PEER_ID]


# -- High 2: poison Matrix transaction ------------------------------------------------------


def _message(event_id: str, **content: Any) -> dict[str, Any]:
    return {
        "type": "m.room.message",
        "event_id": event_id,
        "room_id": ROOM,
        "sender": "@alice:hs.example",
        "origin_server_ts": 1,
        "content": {"msgtype": "m.text", "body": "hi"} | content,
    }


def test_a_malformed_matrix_event_is_skipped_and_the_transaction_acknowledged(
    hostile: Hostile,
) -> None:
    h = hostile
    events = [
        _message("$reply", **{"m.relates_to": {"m.in_reply_to": "x"}}),
        _message("$file", msgtype="m.file", url="mxc://hs.example/f", info={"size": "abc"}),
        _message("$edit", **{"m.relates_to": {"rel_type": "m.replace", "event_id": 7}}),
        ["not", "an", "event"],
        _message("$good", body="behind the poison"),
    ]
    auth = {"Authorization": f"Bearer {HS_TOKEN}"}
    path = "/_matrix/app/v1/transactions/t1"
    answer = h.client.put(path, json={"events": events}, headers=auth)
    assert answer.status_code == 200, answer.text
    assert h.runtime.matrix is not None
    appservice = h.runtime.matrix.appservice
    assert appservice.malformed_events == 4
    assert h.client.get("/health").json()["matrix"]["malformed_events"] == 4
    with h.runtime.sessions() as s:
        keys = set(s.execute(select(ProcessedEvent.key)).scalars())
    assert "matrix:$good" in keys  # the event behind the poison was relayed
    assert not keys & {"matrix:$reply", "matrix:$file", "matrix:$edit"}
    # The homeserver's replay is acknowledged without processing anything twice.
    assert h.client.put(path, json={"events": events}, headers=auth).status_code == 200
    assert appservice.malformed_events == 4


# -- Medium 3: one egress policy ------------------------------------------------------------


def test_avatar_fetches_refuse_internal_addresses_unless_allowed(loopback: Loopback) -> None:
    literal = f"http://127.0.0.1:{loopback.port}/avatar.png"
    by_name = f"http://localhost:{loopback.port}/avatar.png"  # resolved when connecting
    fetch = http_avatar_fetcher()  # the default, as ghosts use it
    for url in (literal, by_name, "http://169.254.169.254/latest/meta-data/"):
        with pytest.raises(RemoteError):
            asyncio.run(fetch(url))
    assert loopback.requests == []
    allowed = http_avatar_fetcher(EgressPolicy(allow=parse_networks(["127.0.0.0/8", "::1"])))
    assert asyncio.run(allowed(literal)) == (PNG, "image/png")
    assert asyncio.run(allowed(by_name)) == (PNG, "image/png")


def test_avatar_fetches_are_capped_in_size() -> None:
    big = Loopback(body=PNG + b"\0" * (6 * 1024 * 1024))
    try:
        allowed = http_avatar_fetcher(EgressPolicy(allow=parse_networks(["127.0.0.1"])))
        with pytest.raises(RemoteError, match="larger than"):
            asyncio.run(allowed(f"http://127.0.0.1:{big.port}/big.png"))
    finally:
        big.close()


def test_peer_calls_go_through_the_egress_policy(hostile: Hostile, loopback: Loopback) -> None:
    # A pairing code naming a loopback peer by name: refused when connecting, nothing sent.
    invite = {
        "url": f"https://localhost:{loopback.port}",
        "instance": "peer-b",
        "code": "c" * 32,
        "fp": "0" * 32,
        "anchor": "slack:T1/C1",
    }
    token = base64.urlsafe_b64encode(json.dumps(invite).encode()).decode()
    with pytest.raises(RemoteError, match="no public address"):
        asyncio.run(hostile.federation.join(token, "fed"))
    assert loopback.requests == []


class _Workspaces:
    api_url = "https://slack.com/api/"

    def api(self, team: str) -> Any:
        return type("Api", (), {"token": "xoxb-secret-bot-token"})()


def _drain(fetch: Any, url: str) -> bytes:
    async def run() -> bytes:
        ref = FileRef("F1", "f.png", "image/png", 0, url)
        return b"".join([c async for c in fetch(Endpoint.slack("T1", "C1"), ref)])

    return asyncio.run(run())


def test_the_slack_bot_token_goes_only_to_slack_file_hosts(loopback: Loopback) -> None:
    # Even with loopback allowed, a file "on" another host never gets the bot token.
    policy = EgressPolicy(allow=parse_networks(["127.0.0.0/8"]))
    fetch = slack_file_source(_Workspaces(), policy=policy)  # type: ignore[arg-type]
    for url in (
        f"http://127.0.0.1:{loopback.port}/files-pri/T1-F1/f.png",
        "https://files.slack.com.evil.example/files-pri/x",
        "https://evil.example/?https://files.slack.com/",
    ):
        with pytest.raises(RemoteError, match="not on a Slack host"):
            _drain(fetch, url)
    assert loopback.requests == []
    # The configured API host (a fake Slack here) is Slack's own.
    workspaces = _Workspaces()
    workspaces.api_url = f"http://127.0.0.1:{loopback.port}/api/"
    ok = slack_file_source(workspaces, policy=EgressPolicy())  # type: ignore[arg-type]
    assert _drain(ok, f"http://127.0.0.1:{loopback.port}/files-pri/T1-F1/f.png") == PNG
    assert loopback.requests[0]["authorization"] == "Bearer xoxb-secret-bot-token"


# -- Medium 4: unauthenticated 500s ---------------------------------------------------------


# b"\xb2\xb3" reads as "²³" (latin-1): str.isdigit() says yes, int() says no.
@pytest.mark.parametrize("stamp", ["abc", "1e9", "-5", b"\xb2\xb3", "9" * 40, " 1"])
def test_a_malformed_slack_timestamp_is_401(hostile: Hostile, stamp: str | bytes) -> None:
    body = b'{"type": "event_callback"}'
    headers = hostile.slack_headers(body) | {"X-Slack-Request-Timestamp": stamp}
    assert hostile.client.post("/slack/events", content=body, headers=headers).status_code == 401


@pytest.mark.parametrize(
    "body", [b"null", b"[]", b'"x"', b"1", b"[" * 5000 + b"]" * 5000, b"\xff"]
)
def test_malformed_pairing_bodies_are_400(hostile: Hostile, body: bytes) -> None:
    answer = hostile.client.post(PAIR_PATH, content=body)
    assert answer.status_code == 400, answer.text


def _jwt(header: Any) -> str:
    def b64(data: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"Bearer {b64(header)}.{b64({'iss': 'x'})}.c2ln"


@pytest.mark.parametrize("header", [[1], "x", None, {"alg": "RS256", "kid": ["k"]}])
def test_a_malformed_jwt_header_is_401(hostile: Hostile, header: Any) -> None:
    answer = hostile.client.post("/internal/tick", headers={"Authorization": _jwt(header)})
    assert answer.status_code == 401, answer.text


def test_unreachable_oidc_keys_refuse_one_token_not_a_minute_of_them() -> None:
    now = [1000.0]
    reachable = [False]

    def fetch() -> dict[str, Any]:
        if not reachable[0]:
            raise ConnectionError("certs endpoint unreachable")
        return jwks()

    audience, email = "https://syncbot.example", "scheduler@proj.iam.gserviceaccount.com"
    verifier = OidcVerifier(
        audience=audience, invokers=frozenset({email}), fetch_keys=fetch, clock=lambda: now[0]
    )
    token = "Bearer " + id_token(audience=audience, email=email)
    with pytest.raises(TokenError, match="unavailable"):
        verifier.verify(token)
    reachable[0] = True
    now[0] += app.oidc.RETRY + 0.1  # seconds later, not a minute
    assert verifier.verify(token)["email"] == email


# -- Medium 5: memory exhaustion ------------------------------------------------------------


@pytest.mark.parametrize(
    "method,path,expected",
    [
        ("POST", "/slack/events", 413),
        ("POST", "/api/federation/events", 413),
        ("PUT", "/_matrix/app/v1/transactions/big", 413),
        ("POST", "/internal/tick", 401),  # refused on its token before any body is read
    ],
)
def test_bodies_are_capped_while_streaming(
    hostile: Hostile, method: str, path: str, expected: int
) -> None:
    """A chunked body (no Content-Length) is cut off at the route's cap, not read whole."""
    chunk = b"x" * (64 * 1024)
    total_chunks = 400  # 25 MiB offered, more than any route accepts
    status, pulled = hostile.stream_chunked(
        method,
        path,
        chunk,
        total_chunks,
        headers=[
            (b"authorization", f"Bearer {HS_TOKEN}".encode()),
            (b"x-slack-request-timestamp", str(int(time.time())).encode()),
            (b"x-slack-signature", b"v0=00"),
        ],
    )
    assert status == expected
    assert pulled * len(chunk) <= 17 * 1024 * 1024 + len(chunk)
    assert pulled < total_chunks


def test_a_declared_oversized_body_is_refused_unread(hostile: Hostile) -> None:
    headers = {"Content-Length": str(200 * 1024 * 1024)}
    answer = hostile.client.post("/slack/events", content=b"{}", headers=headers)
    assert answer.status_code == 413


# -- Medium 6: homeserver down at start -----------------------------------------------------


# What the homeserver answers every call with: enough for the bridge's whoami.
WHOAMI = b'{"user_id": "@slackbot:hs.example", "access_token": "x"}'


def test_serve_starts_with_the_homeserver_down_and_connects_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app.oidc, "fetch_google_keys", jwks)
    with hostile_app(tmp_path) as h:
        # Started: Slack and federation answer, the Matrix part is reported degraded.
        health = h.client.get("/health")
        assert health.status_code == 200
        assert health.json()["matrix"]["status"] == "degraded"
        assert health.json()["status"] == "degraded"
        assert h.client.get("/api/federation/ping").status_code == 200
        # The homeserver comes up on its configured port; the bridge connects by itself.
        port = urlsplit(h.runtime.settings.matrix_homeserver_url).port
        homeserver = Loopback(WHOAMI, port=port)
        try:
            # The bridge reconnects by itself.
            wait_for(
                lambda: h.client.get("/health").json()["matrix"]["status"] == "ok",
                timeout=30,
                interval=0.1,
            )
        finally:
            homeserver.close()


def test_peer_endpoints_are_listed_and_removed_by_exact_instance(hostile: Hostile) -> None:
    # An instance id is matched literally, never as a SQL LIKE pattern.
    with hostile.runtime.sessions() as s, s.begin():
        s.add(Peer(instance_id="peer-b", url="https://b.example", public_key="k"))
    SyncAdmin(hostile.runtime.sessions).add("fed", Endpoint.parse("peer:peer-b/slack:T2/C2"))
    views = {v.instance_id: v.endpoints for v in hostile.federation.peers()}
    assert views["peer-b"] == ("peer:peer-b/slack:T2/C2",)
    hostile.federation.remove("peer-b")
    with hostile.runtime.sessions() as s:
        left = s.execute(select(SyncEndpoint.endpoint).where(SyncEndpoint.network == "peer"))
        assert left.scalars().all() == [f"peer:{PEER_ID}/{PEER_ANCHOR}"]
