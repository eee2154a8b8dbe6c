"""Two instances on loopback, separate databases and Slacks, federated into one sync."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from app.core.endpoints import Endpoint
from app.errors import FederationError
from app.federation import signing
from app.federation.service import EVENTS_PATH, MAX_BODY, PAIR_PATH
from app.federation.urls import check_peer_url
from app.slack.workspaces import Workspaces
from app.store.cipher import TokenCipher
from app.store.engine import make_engine, session_factory
from app.store.migrate import upgrade
from app.store.syncs import SyncAdmin
from fakeslack import FakeSlack
from tests.conftest import TEST_KEY, local_settings
from tests.slack.harness import AppServer, free_port, settled, wait_for

pytestmark = pytest.mark.integration


class Instance:
    def __init__(self, name: str, tmp, teams: list[tuple[str, str, str]]) -> None:
        self.slack = FakeSlack().start()
        for team, label, channel in teams:
            self.slack.add_workspace(team, label)
            self.slack.add_channel(team, channel, "general")
            self.slack.add_user(team, f"U{team}", f"User {team}", email=f"{team}@x")
        self.port = free_port()
        self.settings = local_settings(
            slack_signing_secret=self.slack.signing_secret,
            slack_api_url=self.slack.base_url,
            federation_enabled=True,
            public_url=f"http://127.0.0.1:{self.port}",
            federation_allow_private=True,
            database_url=f"sqlite:///{tmp / name}.db",
        )
        self.engine = make_engine(self.settings)
        upgrade(self.engine)
        sessions = session_factory(self.engine)
        workspaces = Workspaces(sessions, TokenCipher(TEST_KEY), api_url=self.slack.base_url)
        admin = SyncAdmin(sessions)
        admin.create("fed")
        for team, _label, channel in teams:
            asyncio.run(workspaces.add(self.slack.bot_token(team)))
            admin.add("fed", Endpoint.slack(team, channel))
        self.slack.app_url = f"http://127.0.0.1:{self.port}/slack/events"
        self.server: AppServer | None = None
        self.start()

    def start(self) -> None:
        self.server = AppServer(self.settings, self.engine, port=self.port).start()

    def restart(self) -> None:
        assert self.server is not None
        self.server.stop()
        self.start()

    @property
    def federation(self):
        assert self.server and self.server.services
        assert self.server.services.federation is not None
        return self.server.services.federation

    def close(self) -> None:
        if self.server:
            self.server.stop()
        self.slack.stop()
        self.engine.dispose()


@pytest.fixture
def pair(tmp_path) -> Iterator[tuple[Instance, Instance]]:
    a = Instance("a", tmp_path, [("T1", "Acme", "C1"), ("T2", "Beta", "C2")])
    b = Instance("b", tmp_path, [("T3", "Gamma", "C3")])
    try:
        code = a.federation.invite("fed")
        peer = asyncio.run(b.federation.join(code, "fed"))
        assert peer == a.federation.identity.instance_id
        yield a, b
    finally:
        a.close()
        b.close()


def find(slack: FakeSlack, team: str, channel: str, text: str):
    return wait_for(
        lambda: next((m for m in slack.messages(team, channel) if text in m.text), None)
    )


def test_every_kind_flows_both_ways_exactly_once_across_restarts(pair) -> None:
    a, b = pair
    ts = a.slack.post_message("T1", "C1", "UT1", "hello from acme")
    at_b = find(b.slack, "T3", "C3", "hello from acme")
    find(a.slack, "T2", "C2", "hello from acme")
    assert at_b.username == "User T1 (Acme)"
    assert at_b.icons == {"image_48": "https://avatars.slack-edge.test/T1/UT1_192.png"}

    back = b.slack.post_message("T3", "C3", "UT3", "hello from gamma")
    assert find(a.slack, "T1", "C1", "hello from gamma").username == "User T3 (Gamma)"
    find(a.slack, "T2", "C2", "hello from gamma")

    b.restart()  # a restart of either side loses and repeats nothing
    a.slack.edit("T1", "C1", ts, "hello from acme, edited")
    find(b.slack, "T3", "C3", "hello from acme, edited")
    b.slack.post_message("T3", "C3", "UT3", "reply over the wire", thread_ts=at_b.ts)
    reply = find(a.slack, "T1", "C1", "reply over the wire")
    assert reply.thread_ts == ts
    b.slack.react("T3", "C3", at_b.ts, "UT3", "eyes")
    wait_for(lambda: a.slack.messages("T1", "C1")[0].reactions.get("eyes") == ["UT1BOT"])
    b.slack.unreact("T3", "C3", at_b.ts, "UT3", "eyes")
    wait_for(lambda: not a.slack.messages("T1", "C1")[0].reactions.get("eyes"))

    a.restart()
    a.slack.post_message(
        "T1", "C1", "UT1", "with a file", files=[("report.txt", b"report bytes" * 10)]
    )
    copy = find(b.slack, "T3", "C3", "with a file")
    files = wait_for(
        lambda: [m for m in b.slack.messages("T3", "C3") if m.files and m.thread_ts == copy.ts]
    )
    assert b.slack.file_content("T3", files[0].files[0]) == b"report bytes" * 10

    b.slack.delete("T3", "C3", back)
    wait_for(lambda: not [m for m in a.slack.messages("T1", "C1") if "hello from gamma" in m.text])
    # A delivery on one side can start one on the other: both idle, checked twice over.
    wait_for(lambda: all(settled(i.slack, i.server) for i in (a, b, a, b)))
    for text in ("hello from acme", "reply over the wire", "with a file"):
        assert len([m for m in b.slack.messages("T3", "C3") if text in m.text]) <= 1
        assert len([m for m in a.slack.messages("T2", "C2") if text in m.text]) <= 1
    assert len([m for m in a.slack.messages("T1", "C1") if "hello from acme" in m.text]) == 1


def _signed(inst: Instance, body: bytes, path: str = EVENTS_PATH, **override: str):
    headers = signing.sign_headers(
        inst.federation.identity.key(), inst.federation.identity.instance_id, "POST", path, body
    )
    headers.update(override)
    headers["Content-Type"] = "application/json"
    return headers


def test_bad_requests_are_refused_with_no_side_effect(pair, tmp_path) -> None:
    a, b = pair
    url = f"http://127.0.0.1:{a.port}{EVENTS_PATH}"
    anchor = "slack:T3/C3"
    event = {
        "kind": "post",
        "uid": "u1",
        "anchor": anchor,
        "native_id": "p1",
        "author": {"name": "Mallory"},
        "body": {"v": 1, "doc": ["sneaky"]},
    }
    body = json.dumps(event).encode()

    bad_sig = _signed(b, body) | {signing.H_SIGNATURE: "AAAA" * 22}
    assert httpx.post(url, content=body, headers=bad_sig).status_code == 401
    stale = signing.sign_headers(
        b.federation.identity.key(), b.federation.identity.instance_id, "POST", EVENTS_PATH, body
    )
    stale[signing.H_TIMESTAMP] = str(int(time.time()) - 900)
    assert httpx.post(url, content=body, headers=stale).status_code == 401
    ok = _signed(b, body)
    assert httpx.post(url, content=body, headers=ok).status_code == 200
    assert httpx.post(url, content=body, headers=ok).status_code == 401  # replayed nonce
    find(a.slack, "T1", "C1", "sneaky")  # the genuine one went through, once

    # A sync the peer is not in: an anchor of ours the peer was never paired with.
    other = json.dumps(event | {"uid": "u2", "anchor": "slack:T9/C9"}).encode()
    assert httpx.post(url, content=other, headers=_signed(b, other)).status_code == 403
    big = b"{" + b" " * (MAX_BODY + 10) + b"}"
    assert httpx.post(url, content=big, headers=_signed(b, big)).status_code == 413
    unknown = json.dumps(event | {"uid": "u3"}).encode()
    forged = _signed(b, unknown) | {signing.H_INSTANCE: "not-a-peer"}
    assert httpx.post(url, content=unknown, headers=forged).status_code == 401

    # Pairing codes are single use and expire.
    code = a.federation.invite("fed")
    c = Instance("c", tmp_path, [("T7", "Delta", "C7")])
    try:
        asyncio.run(c.federation.join(code, "fed"))
        with pytest.raises(FederationError, match="unknown, used or expired"):
            asyncio.run(c.federation.join(code, "fed"))
        expired = a.federation.invite("fed", ttl=timedelta(seconds=-1))
        with pytest.raises(FederationError, match="unknown, used or expired"):
            asyncio.run(c.federation.join(expired, "fed"))
    finally:
        c.close()
    wait_for(lambda: settled(a.slack, a.server))  # a second Mallory post would be out by now
    assert not [m for m in a.slack.messages("T1", "C1") if "Mallory" in (m.username or "")][1:]


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com",
        "https://127.0.0.1",
        "https://10.0.0.8/x",
        "https://169.254.169.254",
        "https://[::1]",
        "https://user:pw@example.com",
        "ftp://example.com",
    ],
)
def test_outbound_urls_must_be_public_https(url) -> None:
    with pytest.raises(FederationError):
        check_peer_url(url)


def test_key_rotation_is_announced_and_old_key_stops_working(pair) -> None:
    a, b = pair
    old_key = b.federation.identity.key()
    assert asyncio.run(b.federation.rotate_key()) == 1
    body = json.dumps(
        {"kind": "delete", "uid": "r1", "anchor": "slack:T3/C3", "native_id": "none"}
    ).encode()
    url = f"http://127.0.0.1:{a.port}{EVENTS_PATH}"
    with_old = signing.sign_headers(
        old_key, b.federation.identity.instance_id, "POST", EVENTS_PATH, body
    )
    assert httpx.post(url, content=body, headers=with_old).status_code == 401
    assert httpx.post(url, content=body, headers=_signed(b, body)).status_code == 200
    b.slack.post_message("T3", "C3", "UT3", "after rotation")
    find(a.slack, "T1", "C1", "after rotation")
    assert PAIR_PATH  # the pairing route is covered by the fixture's join
