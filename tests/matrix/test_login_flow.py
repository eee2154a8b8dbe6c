"""The seed's whole flow (§5.3, §5.4, §3.3) against a real Synapse and the fake Slack in
Socket Mode: a Matrix user DMs the bot and runs ``login app``; the most recent channels become
portals and the user is invited; a message in an unbridged channel creates its portal and
arrives; rename, topic, members, archive/unarchive follow; ``delete-portal`` removes a portal
that a new message recreates; a restart re-invites nobody."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy.engine import Engine, make_url

from app.core.endpoints import Endpoint
from app.errors import RemoteError
from app.slack.socket_state import ConnectionState
from app.store.engine import make_engine
from app.store.migrate import upgrade
from fakeslack import FakeSlack
from tests.matrix.conftest import bridge_settings, direct_chat
from tests.matrix.harness import BridgeApp
from tests.matrix.synapse import SERVER, MatrixUser, Synapse
from tests.slack.harness import settled, subscribe_as_manifest, wait_for

pytestmark = pytest.mark.integration

_names = itertools.count(1)
BOT = f"@slackbot:{SERVER}"
ICON = "https://icons.example/acme-132.png"
LATENCY_BUDGET = 5.0  # seconds: the seed's FR-001, first message of a new portal included


@dataclass
class Flow:
    synapse: Synapse
    slack: FakeSlack
    engine: Engine
    app: BridgeApp
    alice: MatrixUser
    team: str  # unique per test: the session's one Synapse keeps every test's aliases

    def ghost(self, user: str) -> str:
        return f"@slack_{self.team.lower()}_{user.lower()}:{SERVER}"

    def start_app(self) -> BridgeApp:
        settings = bridge_settings(
            self.synapse,
            slack_signing_secret=self.slack.signing_secret,
            slack_api_url=self.slack.base_url,
            matrix_conversation_count=3,
        )
        app = BridgeApp(settings, self.engine, port=self.synapse.as_port, socket_mode=True)
        return app.start()

    def portal(self, channel: str) -> Any:
        assert self.app.matrix is not None
        return self.app.matrix.portals.get(Endpoint.slack(self.team, channel))

    def room_of(self, channel: str) -> str:
        view = wait_for(lambda: (p := self.portal(channel)) and p.state == "active" and p)
        return str(view.room_id)

    def as_bot(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """The client-server API as the bridge bot (it is in every portal room)."""
        resp = httpx.request(
            method,
            f"{self.synapse.url}/_matrix/client/v3{path}",
            headers={"Authorization": f"Bearer {self.synapse.as_token}"},
            timeout=10,
            **kwargs,
        )
        assert resp.status_code == 200, resp.text
        return resp.json()

    def invites_of(self, room: str, user: str) -> int:
        """How many times ``user`` was ever invited to ``room`` (its timeline, as the bot)."""
        chunk = self.as_bot("GET", f"/rooms/{room}/messages", params={"dir": "b", "limit": 500})
        return sum(
            1
            for e in chunk["chunk"]
            if e["type"] == "m.room.member"
            and e.get("state_key") == user
            and e["content"].get("membership") == "invite"
        )

    def membership(self, room: str, user: str) -> str | None:
        resp = httpx.get(
            f"{self.synapse.url}/_matrix/client/v3/rooms/{room}/state/m.room.member/{user}",
            headers={"Authorization": f"Bearer {self.synapse.as_token}"},
            timeout=10,
        )
        return resp.json().get("membership") if resp.status_code == 200 else None

    def state(self, room: str, kind: str) -> dict[str, Any]:
        """A state event's content; empty when the room has none."""
        resp = httpx.get(
            f"{self.synapse.url}/_matrix/client/v3/rooms/{room}/state/{kind}",
            headers={"Authorization": f"Bearer {self.synapse.as_token}"},
            timeout=10,
        )
        return resp.json() if resp.status_code == 200 else {}

    def notices(self, room: str) -> list[str]:
        return self.notices_of(self.alice, room)

    @staticmethod
    def notices_of(user: MatrixUser, room: str) -> list[str]:
        """What the bot said in ``room``, as ``user`` sees it."""
        return [
            e["content"].get("body", "")
            for e in user.events(room)
            if e["type"] == "m.room.message" and e["sender"] == BOT
        ]

    def bodies_as_bot(self, room: str) -> list[str]:
        chunk = self.as_bot("GET", f"/rooms/{room}/messages", params={"dir": "b", "limit": 100})
        return [
            e["content"].get("body", "") for e in chunk["chunk"] if e["type"] == "m.room.message"
        ]

    def bodies(self, room: str) -> list[str]:
        return [
            e["content"].get("body", "")
            for e in self.alice.events(room)
            if e["type"] == "m.room.message"
        ]


def acme(slack: FakeSlack, team: str) -> None:
    """One Socket Mode workspace; channels C1..C3 recently active, C4 quiet, C5 without us."""
    subscribe_as_manifest(slack)
    slack.add_workspace(team, "Acme", icon=ICON, socket_mode=True)
    for user, name in (("U1", "Ada"), ("U2", "Bob"), ("U3", "Cy")):
        slack.add_user(team, user, name)
    slack.add_channel(team, "C1", "general", members=["U1", "U2"])
    slack.add_channel(team, "C2", "random", members=["U1"])
    slack.add_channel(team, "C3", "design", members=["U2"])
    slack.add_channel(team, "C4", "quiet", members=["U1"])
    slack.add_channel(team, "C5", "elsewhere", members=["U1"], bot_member=False)
    # History before the bridge existed (no events): C4 oldest, C1 newest.
    slack.echo(False)
    for channel in ("C4", "C5", "C3", "C2", "C1"):
        slack.post_message(team, channel, "U1", f"earlier in {channel}")
    slack.echo(True)


F = TypeVar("F", bound=Flow)


@contextmanager
def running(
    kind: type[F], synapse: Synapse, tmp_path: Path, team: str, person: str
) -> Iterator[F]:
    """A ``kind`` of flow: Acme (as ``team``) on a fresh fake Slack, a migrated SQLite
    database, the Matrix user ``person`` and the app started; all closed afterwards."""
    if synapse.proc is None:
        synapse.start()
    slack = FakeSlack().start()
    acme(slack, team)
    engine = make_engine(
        bridge_settings(synapse), url=make_url(f"sqlite:///{tmp_path}/syncbot.db")
    )
    upgrade(engine)
    user = synapse.register_user(person)
    f = kind(synapse, slack, engine, None, user, team)  # type: ignore[arg-type]
    f.app = f.start_app()
    try:
        yield f
    finally:
        user.close()
        f.app.stop()
        slack.stop()
        engine.dispose()


@pytest.fixture
def flow(synapse: Synapse, tmp_path: Path) -> Iterator[Flow]:
    team = f"TL{next(_names)}"
    person = f"alice{next(_names)}f{tmp_path.name[-6:].lower()}"
    with running(Flow, synapse, tmp_path, team, person) as f:
        yield f


def login(f: Flow) -> str:
    """Alice DMs the bot and logs Acme in; returns the DM (her management room)."""
    a = f.alice
    dm = direct_chat(a, BOT)
    a.text(dm, "login app")
    wait_for(lambda: any("bot token" in n for n in f.notices(dm)))
    a.text(dm, f.slack.bot_token(f.team))
    wait_for(lambda: any("app-level token" in n for n in f.notices(dm)))
    a.text(dm, f.slack.app_token)
    wait_for(lambda: any(f"Logged in to Acme ({f.team})" in n for n in f.notices(dm)))
    return dm


def test_login_bridges_recent_channels_and_follows_them(flow: Flow) -> None:
    f, a = flow, flow.alice
    dm = login(f)
    report = wait_for(lambda: next((n for n in f.notices(dm) if "Bridged 3" in n), None))
    assert "#general" in report and "#random" in report and "#design" in report
    assert f.portal("C4") is None and f.portal("C5") is None  # older / not the app's
    assert f.app.bridge.workspace_bridge.management_room(a.user_id) == dm
    a.text(dm, "status")  # commands need no prefix in the management room
    wait_for(lambda: any("Portals: 3 active." in n for n in f.notices(dm)))
    sockets = f.app.sockets
    wait_for(lambda: sockets.states().get(f.team) is ConnectionState.CONNECTED)

    rooms = {c: f.room_of(c) for c in ("C1", "C2", "C3")}
    for room in rooms.values():
        assert f.membership(room, a.user_id) == "invite"
    # Portal state: name, topic, the workspace icon as avatar, members as ghosts.
    assert f.state(rooms["C1"], "m.room.name")["name"] == "#general"
    wait_for(lambda: f.state(rooms["C1"], "m.room.avatar").get("url", "").startswith("mxc://"))
    ghosts = {f.ghost("U1"), f.ghost("U2")}
    wait_for(
        lambda: ghosts <= set(f.as_bot("GET", f"/rooms/{rooms['C1']}/joined_members")["joined"])
    )
    a.call("POST", f"/join/{rooms['C1']}", json={})
    a.call("POST", f"/join/{rooms['C2']}", json={})
    a.call("POST", f"/rooms/{rooms['C3']}/leave", json={})  # declined

    # Both ways through the one relay.
    f.slack.post_message(f.team, "C1", "U2", "hello from slack")
    wait_for(lambda: "hello from slack" in f.bodies(rooms["C1"]))
    a.text(rooms["C1"], "hello from matrix")
    wait_for(lambda: f.slack.find_message(f.team, "C1", text="hello from matrix") is not None)

    # A message in a channel with no portal: created, Alice invited, message delivered.
    posted = time.monotonic()
    f.slack.post_message(f.team, "C4", "U1", "first words in quiet")
    quiet = f.room_of("C4")
    wait_for(lambda: f.membership(quiet, a.user_id) == "invite")
    a.call("POST", f"/join/{quiet}", json={})
    wait_for(lambda: "first words in quiet" in f.bodies(quiet), timeout=LATENCY_BUDGET)
    assert time.monotonic() - posted < LATENCY_BUDGET
    assert f.bodies(quiet).count("first words in quiet") == 1

    # Rename, topic, members joining and leaving.
    f.slack.rename_channel(f.team, "C1", "general-2")
    wait_for(lambda: f.state(rooms["C1"], "m.room.name")["name"] == "#general-2")
    set_topic(f.slack, f.team, "C1", "Release day")
    wait_for(lambda: f.state(rooms["C1"], "m.room.topic").get("topic") == "Release day")
    f.slack.join(f.team, "C1", "U3")
    cy = f.ghost("U3")
    wait_for(lambda: f.membership(rooms["C1"], cy) == "join")
    f.slack.leave(f.team, "C1", "U3")
    wait_for(lambda: f.membership(rooms["C1"], cy) == "leave")

    # Archive makes the room read-only, unarchive restores it.
    f.slack.archive(f.team, "C2", "U1")
    wait_for(lambda: f.portal("C2").state == "archived")
    assert f.state(rooms["C2"], "m.room.power_levels")["events_default"] == 100
    f.slack.unarchive(f.team, "C2", "U1")
    wait_for(lambda: f.portal("C2").state == "active")
    assert f.state(rooms["C2"], "m.room.power_levels")["events_default"] == 0

    # A restart: the resync finds every portal and invites nobody again (C3 was declined).
    before = {c: f.invites_of(r, a.user_id) for c, r in {**rooms, "C4": quiet}.items()}
    assert before == {"C1": 1, "C2": 1, "C3": 1, "C4": 1}
    f.app.stop()
    f.slack.echo(False)  # renamed while the bridge was down: no event will tell
    f.slack.rename_channel(f.team, "C1", "general-3")
    f.slack.echo(True)
    f.app = f.start_app()
    bridge = f.app.bridge.workspace_bridge
    wait_for(lambda: bridge.completed_syncs >= 1)
    assert f.state(rooms["C1"], "m.room.name")["name"] == "#general-3"  # the resync caught up
    after = {c: f.invites_of(r, a.user_id) for c, r in {**rooms, "C4": quiet}.items()}
    assert after == before
    assert f.membership(rooms["C3"], a.user_id) == "leave"
    # ...and the bridge still works after it.
    f.slack.post_message(f.team, "C2", "U1", "after the restart")
    wait_for(lambda: "after the restart" in f.bodies(rooms["C2"]))


def test_delete_portal_then_a_message_recreates_it(flow: Flow) -> None:
    f, a = flow, flow.alice
    dm = login(f)
    wait_for(lambda: any("Bridged 3" in n for n in f.notices(dm)))
    old = f.room_of("C2")
    a.call("POST", f"/join/{old}", json={})
    a.text(old, "!slack delete-portal")
    wait_for(lambda: f.portal("C2") is None)
    wait_for(lambda: f.membership(old, a.user_id) == "leave")  # kicked
    assert f.membership(old, BOT) == "leave"
    endpoints = {e for v in f.app.matrix.portals._syncs.list() for e, _ in v.endpoints}
    assert str(Endpoint.matrix(old)) not in endpoints
    # The channel is bridged again by its next message: a new room, Alice invited afresh.
    f.slack.post_message(f.team, "C2", "U1", "are we back?")
    new = f.room_of("C2")
    assert new != old
    wait_for(lambda: f.membership(new, a.user_id) == "invite")
    a.call("POST", f"/join/{new}", json={})
    wait_for(lambda: "are we back?" in f.bodies(new))
    # The alias left the old room with it and now names the new one.
    alias = f"%23slack_{f.team.lower()}_c2:{SERVER}"
    assert f.as_bot("GET", f"/directory/room/{alias}")["room_id"] == new

    # delete-portal from the management room with a room argument.
    other = f.room_of("C3")
    a.text(dm, f"delete-portal {other}")
    wait_for(lambda: any(f"Deleted the portal of slack:{f.team}/C3" in n for n in f.notices(dm)))
    assert f.portal("C3") is None


def set_topic(slack: FakeSlack, team: str, channel: str, topic: str) -> None:
    """Someone sets the channel topic: Slack's ``channel_topic`` message."""

    def apply() -> None:
        slack.state.workspaces[team].channels[channel].topic = topic

    slack.call(apply)
    slack.send_event(
        team,
        {
            "type": "message",
            "subtype": "channel_topic",
            "channel": channel,
            "channel_type": "channel",  # as Slack sends it: it selects the subscription
            "user": "U1",
            "topic": topic,
            "text": f"set the channel topic: {topic}",
            "ts": f"{time.time():.6f}",
        },
    )


def add_acme(f: Flow) -> None:
    """Acme installed with its tokens, as `login app` would, but with nobody logged in."""
    workspaces = f.app.services.slack.workspaces
    f.app.run(workspaces.add(f.slack.bot_token(f.team), f.slack.app_token))
    assert f.app.sockets is not None
    f.app.run(f.app.sockets.connect(f.team))
    wait_for(lambda: f.app.sockets.states().get(f.team) is ConnectionState.CONNECTED)


def test_room_creation_is_retried_up_to_three_times(
    flow: Flow, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = flow
    add_acme(f)
    portals = f.app.matrix.portals
    monkeypatch.setattr(portals, "_retry_delay", 0.01)
    original = portals._create
    failures = {"left": 2}

    async def flaky(*args: Any) -> str:
        if failures["left"]:
            failures["left"] -= 1
            raise RemoteError("create room: 502", network="matrix", status=502, retryable=True)
        return await original(*args)

    monkeypatch.setattr(portals, "_create", flaky)
    room = f.app.run(portals.ensure(Endpoint.slack(f.team, "C4")))
    assert f.portal("C4").state == "active" and f.portal("C4").room_id == room
    # Three failures in a row: the creation gives up, the portal is pending again...
    failures["left"] = 3
    with pytest.raises(RemoteError):
        f.app.run(portals.ensure(Endpoint.slack(f.team, "C3")))
    assert f.portal("C3").state == "pending" and failures["left"] == 0
    # ...and the next attempt creates it.
    assert f.app.run(portals.ensure(Endpoint.slack(f.team, "C3")))
    assert f.portal("C3").state == "active"


def test_a_ghost_that_cannot_be_created_is_skipped(
    flow: Flow, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = flow
    add_acme(f)
    ghosts = f.app.matrix.ghosts
    original = ghosts.ensure

    async def broken_for_bob(source: Endpoint, author: Any) -> str:
        if author.native_id == f"{f.team}/U2":
            raise RemoteError("ghost registration: M_EXCLUSIVE", network="matrix", status=400)
        return await original(source, author)

    monkeypatch.setattr(ghosts, "ensure", broken_for_bob)
    endpoint = Endpoint.slack(f.team, "C1")
    room = f.app.run(f.app.matrix.portals.ensure(endpoint))
    members = f.app.bridge.workspace_bridge._members
    assert f.app.run(members.sync(endpoint, room)) == (1, 1)  # Ada joined, Bob skipped
    joined = set(f.as_bot("GET", f"/rooms/{room}/joined_members")["joined"])
    assert f.ghost("U1") in joined and f.ghost("U2") not in joined
    # Messages keep flowing past the broken profile, Bob's own posted by the bot in his name.
    f.slack.post_message(f.team, "C1", "U1", "still here")
    f.slack.post_message(f.team, "C1", "U2", "me too")
    wait_for(lambda: "still here" in f.bodies_as_bot(room))
    wait_for(lambda: "Bob (Acme): me too" in f.bodies_as_bot(room))


def impatient_bridge(f: Flow, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """Acme logged in, and an event's wait for its new portal cut to 50 ms."""
    add_acme(f)
    bridge = f.app.bridge.workspace_bridge
    bridge.record_login(f.alice.user_id, f.team, "!dm:test.local")
    monkeypatch.setattr(bridge, "_portal_wait", 0.05)
    return bridge, f.app.matrix.portals


def test_the_first_message_of_a_new_portal_is_never_lost(
    flow: Flow, monkeypatch: pytest.MonkeyPatch
) -> None:
    # #17 item 6: a portal that cannot be made yet (the homeserver down, or slow) no longer
    # holds the event back: it is recorded at once, its Slack copies go out, and the Matrix
    # copy waits in the outbox for the room — then arrives, once, in order.
    f = flow
    _, portals = impatient_bridge(f, monkeypatch)
    monkeypatch.setattr(portals, "_retry_delay", 0.01)
    syncs = f.app.services.syncs
    syncs.create("curated")
    syncs.add("curated", Endpoint.slack(f.team, "C3"))
    syncs.add("curated", Endpoint.slack(f.team, "C2"))
    original = portals._create
    state = {"down": True}

    async def flaky(*args: Any) -> str:
        # Simulated: the homeserver refuses room creation until it is back.
        if state["down"]:
            raise RemoteError("homeserver unavailable", network="matrix", retryable=True)
        return await original(*args)

    monkeypatch.setattr(portals, "_create", flaky)
    f.slack.post_message(f.team, "C3", "U2", "worth the wait")
    f.slack.post_message(f.team, "C3", "U2", "and this too")
    # The Slack copies did not wait for the portal: the events were recorded at once.
    for text in ("worth the wait", "and this too"):
        wait_for(lambda t=text: f.slack.find_message(f.team, "C2", text=t) is not None)
    assert f.portal("C3") is None or f.portal("C3").state != "active"
    assert not any(fr.get("retry_attempt", 0) >= 1 for fr in f.slack.socket_frames)

    state["down"] = False  # the homeserver is back: the waiting copies go to the new room
    room = f.room_of("C3")
    wait_for(lambda: "and this too" in f.bodies_as_bot(room))
    bodies = [b for b in f.bodies_as_bot(room) if b in ("worth the wait", "and this too")]
    assert list(reversed(bodies)) == ["worth the wait", "and this too"]  # newest first
    # The placeholder is gone; later messages go straight to the room.
    assert str(portals.waiting_endpoint(Endpoint.slack(f.team, "C3"))) not in {
        e for v in syncs.list() for e, _ in v.endpoints
    }
    f.slack.post_message(f.team, "C3", "U2", "straight in")
    wait_for(lambda: "straight in" in f.bodies_as_bot(room))
    assert f.bodies_as_bot(room).count("worth the wait") == 1


def test_a_portal_slower_than_the_wait_but_already_linked_gets_the_message_once(
    flow: Flow, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The room was made and linked into the channel's sync, then its creation hooks (invites,
    # members, space) outlasted the event's wait: the placeholder was added beside the room,
    # and the message went to both, so the room showed it twice.
    f = flow
    bridge, portals = impatient_bridge(f, monkeypatch)
    linked, waited = threading.Event(), threading.Event()
    reserve = bridge._reserve

    def reserved(*args: Any) -> None:
        # The event's wait ran out (it is 50 ms here); what it does next happens only once
        # the room is linked, as when the hooks take longer than the wait.
        linked.wait(30)
        try:
            reserve(*args)
        finally:
            waited.set()

    async def slow_hook(endpoint: Endpoint, room: str) -> None:
        # The room is linked already; the event's wait runs out while this hook runs.
        linked.set()
        await asyncio.to_thread(waited.wait, 30)

    monkeypatch.setattr(bridge, "_reserve", reserved)
    portals.on_created.insert(0, slow_hook)
    try:
        f.slack.post_message(f.team, "C3", "U2", "made while linked")
        room = f.room_of("C3")
        wait_for(lambda: "made while linked" in f.bodies_as_bot(room))
        wait_for(lambda: settled(f.slack, f.app))
    finally:
        linked.set()
        waited.set()
        portals.on_created.remove(slow_hook)
    assert waited.is_set()
    assert f.bodies_as_bot(room).count("made while linked") == 1
    assert str(portals.waiting_endpoint(Endpoint.slack(f.team, "C3"))) not in {
        e for v in f.app.services.syncs.list() for e, _ in v.endpoints
    }


def test_the_login_dialogue_survives_a_restart_and_tokens_are_never_echoed(flow: Flow) -> None:
    # #17 item 11: the dialogue is in the database (token encrypted), so the answer after a
    # restart is understood; a token-shaped message is never echoed back or relayed.
    from sqlalchemy import text

    f, a = flow, flow.alice
    dm = direct_chat(a, BOT)
    stray = a.text(dm, f.slack.bot_token(f.team))  # no login started: removed, not echoed
    wait_for(lambda: any("looked like a Slack token" in n for n in f.notices(dm)))
    wait_for(lambda: not next(e for e in a.events(dm) if e["event_id"] == stray)["content"])

    a.text(dm, "login app")
    wait_for(lambda: any("bot token" in n for n in f.notices(dm)))
    f.app.stop()
    f.app = f.start_app()  # a restart (or another instance) between the two answers
    a.text(dm, f.slack.bot_token(f.team))
    wait_for(lambda: any("app-level token" in n for n in f.notices(dm)))
    with f.engine.connect() as c:
        stored = c.execute(text("SELECT bot_token_enc FROM matrix_login_dialogues")).scalar()
    assert stored and "xoxb" not in stored  # encrypted at rest
    f.app.stop()
    f.app = f.start_app()
    a.text(dm, f.slack.app_token)
    wait_for(lambda: any(f"Logged in to Acme ({f.team})" in n for n in f.notices(dm)))
    secrets = (f.slack.bot_token(f.team), f.slack.app_token)
    assert not any(secret in n for n in f.notices(dm) for secret in secrets)
    assert not any("Unknown command" in n for n in f.notices(dm))
    with f.engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM matrix_login_dialogues")).scalar() == 0


def test_a_held_channel_is_announced_in_the_management_room(flow: Flow) -> None:
    # #17 item 2 on Matrix: the bot removed from a private channel of a workspace logged in
    # from Matrix; the login's management room hears of it, the sender is told their message
    # waits, and the bot's return delivers it.
    f, a = flow, flow.alice
    dm = login(f)
    wait_for(lambda: any("Bridged 3" in n for n in f.notices(dm)))
    room = f.room_of("C2")
    a.call("POST", f"/join/{room}", json={})
    f.slack.convert_to_private(f.team, "C2")
    f.slack.remove_bot(f.team, "C2", by="U1")
    sent = a.text(room, "kept for later")
    wait_for(lambda: any("C2" in n and "removed" in n for n in f.notices(dm)))
    wait_for(lambda: any("waiting to reach" in n for n in f.notices(room)))
    assert f.slack.find_message(f.team, "C2", text="kept for later") is None
    f.slack.invite_bot(f.team, "C2", by="U1")
    wait_for(lambda: f.slack.find_message(f.team, "C2", text="kept for later") is not None)
    assert sent
