"""The appservice API on our app: hs_token checks, replayed transactions, echoes, commands,
and a Synapse restart in the middle of traffic."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import func, select

from app.core.endpoints import Endpoint
from app.store.models import Delivery
from app.store.models_matrix import MatrixTransaction
from tests.matrix.conftest import ROOM_VERSION, World, direct_chat
from tests.slack.harness import settled, wait_for

pytestmark = pytest.mark.integration


def push(w: World, txn: str, events: list[dict[str, Any]], **auth: Any) -> httpx.Response:
    headers = auth.pop("headers", {"Authorization": f"Bearer {w.synapse.hs_token}"})
    path = auth.pop("path", f"/_matrix/app/v1/transactions/{txn}")
    return httpx.put(
        w.app.url + path, json={"events": events}, headers=headers, timeout=10, **auth
    )


def message(w: World, event_id: str, body: str, sender: str | None = None) -> dict[str, Any]:
    return {
        "type": "m.room.message",
        "room_id": w.room,
        "event_id": event_id,
        "sender": sender or w.alice.user_id,
        "origin_server_ts": int(time.time() * 1000),
        "content": {"msgtype": "m.text", "body": body},
    }


def texts(w: World, team: str = "T1", channel: str = "C1") -> list[str]:
    return [m.text for m in w.slack.messages(team, channel)]


def test_tokens_are_checked(world: World) -> None:
    w = world
    url = w.app.url
    missing = httpx.put(f"{url}/_matrix/app/v1/transactions/t0", json={"events": []})
    assert missing.status_code == 401 and missing.json()["errcode"] == "M_UNAUTHORIZED"
    wrong = push(
        w,
        "t1",
        [message(w, "$wrong", "sneaky")],
        headers={"Authorization": "Bearer not-the-token"},
    )
    assert wrong.status_code == 403 and wrong.json()["errcode"] == "M_FORBIDDEN"
    legacy_wrong = httpx.get(f"{url}/users/@slack_t1_u9:test.local?access_token=nope")
    assert legacy_wrong.status_code == 403
    ping = httpx.post(
        f"{url}/_matrix/app/v1/ping",
        json={"transaction_id": "p"},
        headers={"Authorization": f"Bearer {w.synapse.hs_token}"},
    )
    assert ping.status_code == 200 and ping.json() == {}
    # Legacy unprefixed path with the legacy query-parameter token.
    legacy = push(
        w,
        "legacy1",
        [],
        headers={},
        path="/transactions/legacy1",
        params={"access_token": w.synapse.hs_token},
    )
    assert legacy.status_code == 200
    # User query: ghosts in our namespace exist on demand; others do not.
    token = {"Authorization": f"Bearer {w.synapse.hs_token}"}
    assert (
        httpx.get(f"{url}/_matrix/app/v1/users/@slack_t1_u9:test.local", headers=token).status_code
        == 200
    )
    assert (
        httpx.get(f"{url}/_matrix/app/v1/users/@bob:test.local", headers=token).status_code == 404
    )
    wait_for(lambda: settled(w.slack, w.app))  # a relayed "sneaky" would have landed by now
    assert "sneaky" not in " ".join(texts(w))


def test_replayed_transaction_is_processed_once(world: World) -> None:
    w = world
    events = [message(w, "$replay-1", "once only"), message(w, "$replay-2", "and me")]
    for _ in range(3):
        assert push(w, "txn-replayed", events).status_code == 200
    # The same events inside a new transaction (e.g. after our restart) are claimed already.
    assert push(w, "txn-other", events[:1]).status_code == 200
    wait_for(lambda: texts(w).count("and me") == 1 and texts(w, "T2", "C2").count("and me") == 1)
    wait_for(lambda: settled(w.slack, w.app))
    assert texts(w).count("once only") == 1 and texts(w, "T2", "C2").count("once only") == 1
    assert texts(w).index("once only") < texts(w).index("and me")
    with w.app.services.sessions() as s:
        rows = s.execute(select(MatrixTransaction.txn_id)).scalars().all()
    assert {"txn-replayed", "txn-other"} <= set(rows)


def test_echoes_of_our_ghosts_and_bot_are_dropped(world: World) -> None:
    w = world
    ghost = message(w, "$echo-1", "ghost echo", sender="@slack_t1_u1:test.local")
    bot = message(w, "$echo-2", "bot echo", sender="@slackbot:test.local")
    real = message(w, "$echo-3", "real one")
    assert push(w, "txn-echo", [ghost, bot, real]).status_code == 200
    wait_for(lambda: "real one" in texts(w))
    assert not {"ghost echo", "bot echo"} & set(texts(w))


def notices(w: World, room: str) -> list[str]:
    return [
        e["content"].get("body", "")
        for e in w.alice.events(room)
        if e["sender"] == "@slackbot:test.local" and e["content"].get("msgtype") == "m.notice"
    ]


def test_bot_commands(world: World) -> None:
    w = world
    w.slack.add_workspace("T3", "Gamma")
    a = w.alice
    dm = direct_chat(a, "@slackbot:test.local")
    logged_in: list[str] = []

    async def hook(info: Any, request: Any) -> None:
        logged_in.append(info.team_id)
        assert request.room_id == dm and request.user_id == a.user_id

    w.app.matrix.on_login.append(hook)
    a.text(dm, "help")
    wait_for(lambda: any("login app" in n for n in notices(w, dm)))
    a.text(dm, "login app")
    wait_for(lambda: any("bot token" in n for n in notices(w, dm)))
    token_event = a.text(dm, w.slack.bot_token("T3"))
    wait_for(lambda: any("app-level token" in n for n in notices(w, dm)))
    a.text(dm, "xapp-1-A0SYNCBOT-123-abcdef")
    wait_for(lambda: any("Logged in to Gamma (T3)" in n for n in notices(w, dm)))
    assert logged_in == ["T3"]
    redacted = next(e for e in a.events(dm) if e["event_id"] == token_event)
    assert redacted["content"] == {}  # the token is gone from the room
    assert w.app.services.slack.workspaces.app_token("T3") == "xapp-1-A0SYNCBOT-123-abcdef"

    # Prefixed commands in the bridged room.
    a.text(w.room, "!slack unlink")
    wait_for(lambda: any("Unlinked" in n for n in notices(w, w.room)))
    assert not any(str(Endpoint.matrix(w.room)) in dict(v.endpoints) for v in w.syncs.list())
    a.text(w.room, "!slack link general")
    wait_for(lambda: any("Linked this room" in n for n in notices(w, w.room)))
    assert str(Endpoint.matrix(w.room)) in dict(w.syncs.list()[0].endpoints)
    a.text(w.room, "!slack status")
    wait_for(lambda: any("Gamma (T3)" in n and "'general'" in n for n in notices(w, w.room)))
    # Commands are not relayed to Slack.
    assert not any("!slack" in t for t in texts(w))


def failed_attempts(w: World, target: Endpoint) -> int:
    """The most attempts a delivery to ``target`` still waiting for another one has had."""
    with w.app.services.sessions() as s:  # type: ignore[union-attr]
        most = s.execute(
            select(func.max(Delivery.attempts)).where(
                Delivery.target_endpoint == str(target), Delivery.status == "pending"
            )
        ).scalar_one()
    return int(most or 0)


def test_synapse_restart_loses_and_duplicates_nothing(world: World) -> None:
    w = world
    w.slack.post_message("T1", "C1", "U1", "before restart")
    wait_for(
        lambda: any(e["content"].get("body") == "before restart" for e in w.alice.events(w.room))
    )
    w.synapse.stop()
    sent = [f"during outage {i}" for i in range(4)]
    for text in sent:
        w.slack.post_message("T1", "C1", "U1", text)
    # Deliveries fail against the dead homeserver and are retried (in order: the first one
    # holds the others back).
    wait_for(lambda: failed_attempts(w, Endpoint.matrix(w.room)) >= 2)
    w.synapse.start()

    def arrived() -> list[str]:
        return [
            e["content"].get("body")
            for e in w.alice.events(w.room)
            if e["type"] == "m.room.message" and e["sender"].startswith("@slack_")
        ]

    wait_for(lambda: all(t in arrived() for t in sent), timeout=40)
    bodies = arrived()
    assert [b for b in bodies if b in sent] == sent  # once each, in order
    w.alice.text(w.room, "after restart")
    wait_for(lambda: "after restart" in texts(w))
    wait_for(lambda: settled(w.slack, w.app))
    assert texts(w).count("after restart") == 1


def test_portal_on_alias_query_and_encrypted_rooms_refused(world: World) -> None:
    w = world
    w.slack.add_channel("T1", "C9", "random")
    alias = "#slack_t1_c9:test.local"
    found = w.alice.call("GET", f"/directory/room/{quote(alias)}")  # the homeserver asks our app
    portal = w.app.matrix.portals.get(Endpoint.slack("T1", "C9"))
    assert portal is not None and portal.state == "active" and portal.alias == alias
    assert found["room_id"] == portal.room_id
    sync = next(v for v in w.syncs.list() if v.name == "portal-T1-C9")
    assert dict(sync.endpoints) == {"slack:T1/C9": "active", f"matrix:{portal.room_id}": "active"}
    # Asking again adopts the same room rather than creating another.
    assert w.alice.call("GET", f"/directory/room/{quote(alias)}")["room_id"] == portal.room_id

    locked = w.alice.call(
        "POST",
        "/createRoom",
        json={
            "preset": "private_chat",
            "room_version": ROOM_VERSION,
            "initial_state": [
                {
                    "type": "m.room.encryption",
                    "state_key": "",
                    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                }
            ],
            "invite": ["@slackbot:test.local"],
        },
    )["room_id"]
    wait_for(lambda: any("end-to-end encrypted" in n for n in notices(w, locked)))
    wait_for(
        lambda: (
            "@slackbot:test.local"
            not in w.alice.call("GET", f"/rooms/{locked}/joined_members")["joined"]
        )
    )


def test_slack_archive_makes_the_portal_read_only_and_unarchive_restores(world: World) -> None:
    from app.bridge.setup import archive_hook

    w = world
    w.slack.add_channel("T1", "C8", "archivable")
    w.alice.call("GET", f"/directory/room/{quote('#slack_t1_c8:test.local')}")
    endpoint = Endpoint.slack("T1", "C8")
    portal = w.app.matrix.portals.get(endpoint)
    assert portal is not None and portal.room_id
    hook = archive_hook(w.app.matrix.portals)

    def levels() -> dict:
        async def read() -> dict:
            # The client of the app's own loop: each event loop has its own.
            bot = w.app.matrix.homeserver.bot
            return (await bot.get_power_levels(portal.room_id)).serialize()

        return w.app.run(read())

    def slack_event(kind: str) -> dict:
        return {"team_id": "T1", "event": {"type": kind, "channel": "C8"}}

    w.app.run(hook(slack_event("channel_archive")))
    assert w.app.matrix.portals.get(endpoint).state == "archived"
    assert levels()["events_default"] == 100  # read-only for everyone but the bridge bot
    w.app.run(hook(slack_event("channel_unarchive")))
    assert w.app.matrix.portals.get(endpoint).state == "active"
    assert levels()["events_default"] == 0
    w.app.run(hook(slack_event("channel_unarchive")))  # already active: a no-op
    assert w.app.matrix.portals.get(endpoint).state == "active"
